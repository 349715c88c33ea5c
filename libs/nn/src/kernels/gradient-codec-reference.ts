// Plain references for the gradient codecs (gradient-codec.ts): arithmetic on numbers, no bit tricks, one value at
// a time. The fast codecs are tested against these and against a PyTorch/NumPy fixture.

/** Rounds to the nearest integer, ties to even (as IEEE 754 and NumPy's round do). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +∞
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const HALF_MAX = 65504;
const BF16_MAX = 3.3895313892515355e38; // (2 − 2^-7) · 2^127

/** The float16 value nearest `x` (ties to even), as a number; ±Infinity where it overflows (|x| ≥ 65520). */
export function fp16RoundReference(x: number): number {
  return roundToSignificand(x, 10, -14, HALF_MAX);
}

/** Nearest value with `bits` fraction bits and exponent ≥ minExp (subnormals below), ties to even; ±∞ above max. */
function roundToSignificand(x: number, bits: number, minExp: number, max: number): number {
  const a = Math.abs(x);
  if (a === 0 || !Number.isFinite(a)) return x;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1; // log2 may be off by one next to a power of two
  if (2 ** (e + 1) <= a) e += 1;
  const step = 2 ** (Math.max(e, minExp) - bits);
  const r = roundHalfEven(a / step) * step;
  return Math.sign(x) * (r > max ? Infinity : r);
}

/** The bfloat16 value nearest float32 `x` (ties to even): 7 fraction bits, float32's exponent range. */
export function bf16RoundReference(x: number): number {
  return roundToSignificand(x, 7, -126, BF16_MAX);
}

/** int8 block scale: max|x| / 127 as float32, at least the smallest float32 subnormal when the block is not all zero. */
export function int8ScaleReference(block: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < block.length; i++) max = Math.max(max, Math.abs(block[i]));
  if (max === 0) return 0;
  return Math.max(Math.fround(max / 127), 2 ** -149);
}

/** The int8 code of `x` in a block of scale `scale`: round(x / scale) ties to even, within ±127. */
export function int8CodeReference(x: number, scale: number): number {
  if (scale === 0) return 0;
  return Math.max(-127, Math.min(127, roundHalfEven(x / scale)));
}
