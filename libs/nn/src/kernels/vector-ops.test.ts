import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { randomFloats } from '../testing/numeric.js';
import { addIntoReference, firstNonFiniteReference, unitFloatsReference } from './vec-reference.js';
import { addIntoWasm, firstNonFiniteWasm, unitFloatsWasm, wasmFloatsBase, wasmFloatsIn } from './vec-wasm.js';
import { WebAssembly } from './wasm-runtime.js';
import { addInto, firstNonFinite, unitFloats, wasmFloats } from './vector-ops.js';

// Past 65,536 values the WebAssembly passes copy a group at a time: lengths on both sides of that and of two groups.
const LENGTHS = [0, 1, 3, 4, 5, 15, 16, 17, 255, 256, 1001, 65_536, 65_537, 101_770, 131_073];

describe('addInto', () => {
  it.each(LENGTHS)('WebAssembly gives the reference bits for %i values', (n) => {
    const rng = new Rng(n);
    const g = randomFloats(rng, n, -1e3, 1e3, 0.3);
    const sum = randomFloats(rng, n, -1, 1, 0.3);
    for (let i = 0; i < n; i += 7) sum[i] = -0;
    const want = sum.slice();
    addIntoReference(want, g);
    const got = sum.slice();
    addIntoWasm(got, g);
    expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
  });

  it('keeps working after a larger call grew the memory', () => {
    const small = () => {
      const s = new Float32Array([1, 2, 3]);
      addIntoWasm(s, new Float32Array([0.5, 0.25, -3]));
      return Array.from(s);
    };
    expect(small()).toEqual([1.5, 2.25, 0]);
    addIntoWasm(new Float32Array(1_000_000), new Float32Array(1_000_000));
    expect(small()).toEqual([1.5, 2.25, 0]);
  });

  it('adds the first sum.length values of a longer g and rejects a shorter one', () => {
    const sum = new Float32Array(300).fill(1);
    addInto(sum, new Float32Array(400).fill(2));
    expect(sum.every((v) => v === 3)).toBe(true);
    expect(() => addInto(sum, new Float32Array(299))).toThrow('addInto: sum holds 300 values but g only 299');
  });
});

describe('firstNonFinite', () => {
  it.each(LENGTHS.filter((n) => n > 0))('WebAssembly finds NaN, +Inf and -Inf where the reference does in %i values', (n) => {
    const rng = new Rng(n);
    const values = randomFloats(rng, n, -3e38, 3e38);
    expect(firstNonFiniteWasm(values)).toBe(-1);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const at of [0, 15, 16, 17, 65_535, 65_536, 65_537, n - 1].filter((i) => i < n)) {
        const v = values.slice();
        v[at] = bad;
        if (at + 1 < n) v[n - 1] = bad; // a later one must not win
        expect([firstNonFiniteWasm(v), firstNonFinite(v)]).toEqual([firstNonFiniteReference(v), at]);
      }
    }
  });

  it('counts -0, the largest float and subnormals as finite', () => {
    const v = new Float32Array(300).fill(-0);
    v[1] = 3.4028234663852886e38;
    v[2] = 1e-45;
    expect([firstNonFiniteWasm(v), firstNonFinite(v), firstNonFiniteWasm(new Float32Array(0))]).toEqual([-1, -1, -1]);
  });
});

describe('wasmFloats', () => {
  it.each(LENGTHS)('starts at zero and, added into and checked in place, gives the reference bits for %i values', (n) => {
    const rng = new Rng(n + 1);
    const sum = wasmFloats(n);
    expect(sum.every((v) => Object.is(v, 0))).toBe(true);
    const want = new Float32Array(n);
    for (let k = 0; k < 3; k++) {
      const g = randomFloats(rng, n, -1e3, 1e3, 0.3);
      for (let i = k; i < n; i += 5) g[i] = -0; // +0 + -0 is +0
      addIntoReference(want, g);
      addInto(sum, g);
    }
    expect(new Uint32Array(sum.buffer, sum.byteOffset, n)).toEqual(new Uint32Array(want.buffer));
    expect(firstNonFinite(sum)).toBe(-1);
    if (n > 0) {
      sum[n - 1] = Number.NaN;
      sum[n >> 1] = Number.NEGATIVE_INFINITY;
      expect([firstNonFinite(sum), firstNonFiniteWasm(sum)]).toEqual([n >> 1, n >> 1]);
    }
  });

  it('lives outside the shared staging memory: stays valid when that grows, and each array is its own', () => {
    const a = wasmFloats(1000);
    const b = wasmFloats(1000);
    addIntoWasm(a, new Float32Array(1000).fill(2));
    addIntoWasm(new Float32Array(2_000_000), new Float32Array(2_000_000)); // grows the shared memory
    addIntoWasm(a, new Float32Array(1000).fill(0.5));
    expect([a[0], a[999], b[0], b[999]]).toEqual([2.5, 2.5, 0, 0]);
  });

  it('a part of one is added into and checked as an ordinary array', () => {
    const sum = wasmFloats(600);
    const part = sum.subarray(100, 400);
    addIntoWasm(part, new Float32Array(300).fill(3));
    part[299] = Number.POSITIVE_INFINITY;
    expect([sum[99], sum[100], sum[398], sum[400], firstNonFiniteWasm(part), firstNonFiniteWasm(sum)]).toEqual([0, 3, 3, 0, 299, 399]);
  });

  it('can live in a kernel’s own memory, with a staging area there, and leaves the rest of that memory alone', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    const all = new Float32Array(memory.buffer);
    all.fill(7);
    const at = wasmFloatsBase;
    const sum = wasmFloatsIn(memory, at, at + 64, 10);
    sum.fill(0);
    addIntoWasm(sum, new Float32Array(10).fill(0.5));
    sum[3] = Number.NaN;
    expect(firstNonFiniteWasm(sum)).toBe(3);
    // Only the 10 values and the 10 staged ones changed.
    const changed = all.reduce<number[]>((idx, v, i) => (v === 7 ? idx : [...idx, i]), []);
    const floats = (from: number) => Array.from({ length: 10 }, (_, i) => (from >> 2) + i);
    expect(changed).toEqual([...floats(at), ...floats(at + 64)]);
    expect(sum.byteOffset).toBe(at);
    expect(() => wasmFloatsIn(memory, at - 16, at + 64, 10)).toThrow(`wasmFloatsIn: the arrays must lie at or past byte ${at}`);
  });

  it('adds an operand that lives in the same memory in place, leaving the staging area alone', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    const at = wasmFloatsBase;
    const sum = wasmFloatsIn(memory, at, at + 64, 10);
    const staging = new Float32Array(memory.buffer, at + 64, 10).fill(7);
    const g = new Float32Array(memory.buffer, at + 128, 10);
    g.forEach((_, i) => (g[i] = i - 4.5));
    sum.fill(1);
    addIntoWasm(sum, g);
    const want = new Float32Array(10).fill(1);
    addIntoReference(want, g);
    expect([Array.from(sum), Array.from(staging)]).toEqual([Array.from(want), Array(10).fill(7)]);
  });

  it.each([-1, 1.5, Number.NaN])('rejects %s values', (n) => {
    expect(() => wasmFloats(n)).toThrow(`wasmFloats: n must be a whole number >= 0, got ${n}`);
  });
});

describe('unitFloats', () => {
  it('gives every byte value the float32 nearest v / 255, in WebAssembly as in the reference', () => {
    const bytes = Uint8Array.from({ length: 256 * 3 + 5 }, (_, i) => (i * 7) % 256); // every value, odd length
    const want = Float32Array.from(bytes, (v) => Math.fround(v / 255));
    const got = new Float32Array(bytes.length);
    unitFloatsWasm(bytes, got);
    expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
    const ref = new Float32Array(bytes.length);
    unitFloatsReference(bytes, ref);
    expect(new Uint32Array(ref.buffer)).toEqual(new Uint32Array(want.buffer));
    expect([got[0], got[bytes.indexOf(255)]]).toEqual([0, 1]);
  });

  it.each([0, 1, 15, 16, 17, 255, 256, 1000, 401_408])('WebAssembly and the dispatcher give the reference bits for %i bytes', (n) => {
    const rng = new Rng(n);
    const bytes = Uint8Array.from({ length: n }, () => Math.floor(rng.nextFloat() * 256));
    const want = new Float32Array(n);
    unitFloatsReference(bytes, want);
    for (const kernel of [unitFloatsWasm, unitFloats]) {
      const got = new Float32Array(n).fill(-1);
      kernel(bytes, got);
      expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
    }
  });

  it('refuses operands of different lengths', () => {
    expect(() => unitFloatsWasm(new Uint8Array(300), new Float32Array(299))).toThrow('unitFloats: 300 bytes for 299 floats');
    expect(() => unitFloatsReference(new Uint8Array(3), new Float32Array(4))).toThrow('unitFloats: 3 bytes for 4 floats');
  });
});
