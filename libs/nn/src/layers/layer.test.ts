import { describe, expect, it } from 'vitest';
import { batchBuffer, shapeSize } from './layer.js';

describe('shapeSize', () => {
  it.each([
    [[784], 784],
    [[3, 28, 28], 2352],
    [[], 1],
  ])('%j holds %i floats', (shape, size) => expect(shapeSize(shape)).toBe(size));
});

describe('batchBuffer', () => {
  it('keeps a buffer that is large enough and replaces one that is too small', () => {
    const buffer = new Float32Array(12);
    expect(batchBuffer(buffer, 12)).toBe(buffer);
    expect(batchBuffer(buffer, 5)).toBe(buffer);
    const grown = batchBuffer(buffer, 13);
    expect([grown === buffer, grown.length]).toEqual([false, 13]);
  });
});
