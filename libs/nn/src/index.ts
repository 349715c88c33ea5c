export { ConfigError } from './config-error.js';
export { deriveSeed, Rng } from './rng.js';
export type { Gemm } from './kernels/gemm.js';
export { gemmReference } from './kernels/gemm-reference.js';
export { gemmFast } from './kernels/gemm-fast.js';
export { gemmWasm, gemmWasmSkipZeros, WASM_KERNEL, type WasmKernel } from './kernels/gemm-wasm.js';
export { shapeSize, type Layer, type Shape } from './layers/layer.js';
export type { LayerSpec, Architecture } from './layers/layer-spec.js';
export { denseForward, denseBackward, type DenseParams } from './layers/dense.js';
export { reluForward, reluBackward } from './layers/relu.js';
export { INIT_SCHEMES, type InitScheme } from './layers/weight-init.js';
export { softmaxCrossEntropy, argmaxRows, type BatchStats } from './layers/softmax-cross-entropy.js';
export {
  parseModelSpec,
  formatModelSpec,
  architectureOf,
  DEFAULT_MODEL,
  MODEL_PRESETS,
  MAX_PARAMETERS,
  type ModelSpec,
  type MlpSpec,
  type CnnSpec,
} from './model-spec.js';
export { Model, checkModelSpec, type ModelOptions, type ModelStorage } from './model.js';
export { Optimizer, OPTIMIZER_NAMES, type OptimizerName, type OptimizerHyper, type OptimizerState } from './optim/optimizer.js';
export { Sgd, Momentum } from './optim/sgd.js';
export { Adam } from './optim/adam.js';
export { makeOptimizer } from './optim/make-optimizer.js';
export { makeSchedule, SCHEDULE_KINDS, type ScheduleKind, type ScheduleConfig, type LrSchedule } from './optim/schedule.js';
export {
  encodeModel,
  decodeModel,
  verifyModelFile,
  DamagedModelFileError,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  type SavedModel,
} from './serialize.js';
export { floatsToBytes, floatsIntoBytes, floatBytesView, bytesToFloats, bytesIntoFloats } from './kernels/float-bytes.js';
export { addInto, firstNonFinite, unitFloats, wasmFloats } from './kernels/vector-ops.js';
export { paramsDigest, paramsSha256 } from './params-hash.js';
export { conv2dOutputSize, type Conv2dKernel, type Conv2dPadding, type Conv2dShape } from './kernels/conv2d.js';
export { conv2dReference } from './kernels/conv2d-reference.js';
export { conv2dWasm, createConv2dWasm } from './kernels/conv2d-wasm.js';
export { maxPool2dOutputSize, type MaxPool2dKernel, type Pool2dShape } from './kernels/maxpool2d.js';
export { maxPool2dReference } from './kernels/maxpool2d-reference.js';
export { maxPool2dWasm } from './kernels/maxpool2d-wasm.js';
export {
  encodeGradient,
  decodeGradientInto,
  encodedGradientBytes,
  encodeWithErrorFeedback,
  encodeWithErrorFeedbackComposed,
  fp16Bits,
  bf16Bits,
  GradientCodecError,
  GRADIENT_CODECS,
  INT8_BLOCK,
  keepsResidual,
  type GradientCodec,
} from './kernels/gradient-codec.js';
export {
  fp16RoundReference,
  bf16RoundReference,
  int8ScaleReference,
  int8CodeReference,
  roundHalfEven,
} from './kernels/gradient-codec-reference.js';
