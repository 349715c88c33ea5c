/**
 * A small seeded random number generator (xoshiro128**), so that initialisation and data order are
 * reproducible from one integer seed on every machine. Its whole state is four uint32 words, which a
 * checkpoint can save and restore.
 */
export class Rng {
  private readonly s = new Uint32Array(4);
  private spareNormal: number | undefined;

  constructor(seed: number) {
    this.reseed(seed);
  }

  /**
   * Starts this generator's stream again from `seed`, as `new Rng(seed)` starts it (without allocating: for a
   * stream per sample in a hot loop, with deriveSeed).
   */
  reseed(seed: number): void {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`Invalid seed: ${seed} (use a whole number >= 0)`);
    }
    this.spareNormal = undefined;
    // splitmix32 expands the seed into four well-mixed, not-all-zero words.
    let x = (seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** A generator whose stream depends only on (seed, ...keys): e.g. `Rng.derive(seed, epoch)`. */
  static derive(seed: number, ...keys: number[]): Rng {
    let h = seed >>> 0;
    for (const k of keys) h = deriveSeed(h, k);
    return new Rng(h);
  }

  /** The next uint32. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x1_0000_0000) throw new RangeError(`Invalid range: ${n}`);
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  nextNormal(): number {
    if (this.spareNormal !== undefined) {
      const z = this.spareNormal;
      this.spareNormal = undefined;
      return z;
    }
    let u = 0;
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `a` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** The state as five numbers (four words and a flag-free spare), for checkpoints. */
  getState(): number[] {
    return [...this.s, this.spareNormal ?? Number.NaN];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 5 || state.slice(0, 4).some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new RangeError(`Invalid RNG state: ${JSON.stringify(state)} (expected 4 uint32 words and a spare)`);
    }
    if (state.slice(0, 4).every((w) => w === 0))
      throw new RangeError('Invalid RNG state: all four words are 0 (the generator would only return 0)');
    this.s.set(state.slice(0, 4));
    this.spareNormal = Number.isNaN(state[4]) ? undefined : state[4];
  }
}

/**
 * One key folded into a derived seed: Rng.derive(seed, k1, k2) is new Rng(deriveSeed(deriveSeed(seed >>> 0, k1), k2)).
 */
export function deriveSeed(h: number, key: number): number {
  return (Math.imul(h ^ (key >>> 0), 0x9e3779b1) + 0x7f4a7c15) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
