import type { ModelSpec } from '@gradq/nn';
import { numpyUnavailable, runNumpyReference } from './numpy-reference.js';
import { runTorchReference, torchUnavailable } from './torch-reference.js';

/** What a reference trainer reports. */
export interface ReferenceResult {
  samples_per_s: number;
  test_accuracy: number;
  /** Samples it trains per epoch. */
  train_samples: number;
  /** The line the script printed. */
  line: string;
}

/** The trainer gradq is measured against, for one model: NumPy for MLPs, PyTorch (one thread) for CNNs. */
export interface Reference {
  trainer: 'numpy' | 'pytorch';
  /** Its row's name in the table. */
  label: string;
  /** Its note under the table. */
  note: string;
  run(batch: number): Promise<ReferenceResult>;
}

export interface ReferencePlan {
  spec: ModelSpec;
  dataDir?: string;
  epochs: number;
  trainSamples: number;
}

/** The reference for the plan's model, or why it cannot run here. */
export function referenceFor(plan: ReferencePlan): Reference | { skipped: string } {
  const { spec, dataDir, epochs, trainSamples } = plan;
  if (spec.kind === 'mlp') {
    const skipped = numpyUnavailable(spec.sizes);
    if (skipped !== undefined) return { skipped };
    return {
      trainer: 'numpy',
      label: 'numpy (60000 samples)',
      note:
        'numpy: tools/numpy_mlp.py with 1 OpenBLAS thread; it always trains full epochs on all 60000 samples with its own ' +
        'initialisation, so its parameters are not compared.',
      run: (batch) => runNumpyReference({ dataDir, epochs, sizes: spec.sizes, batch }),
    };
  }
  const skipped = torchUnavailable(spec);
  if (skipped !== undefined) return { skipped };
  return {
    trainer: 'pytorch',
    label: 'pytorch, 1 thread',
    note:
      'pytorch: tools/torch_cnn.py, the same architecture on the same samples, epochs and batch with one thread (Adam, ' +
      'cosine decay), its own initialisation and data order, so its parameters are not compared.',
    run: (batch) => runTorchReference({ dataDir, epochs, spec, batch, trainSamples }),
  };
}
