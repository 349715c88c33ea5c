import { describe, expect, it } from 'vitest';
import { ProgressBar, transferProgress } from './progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { isTTY, writes, write: (s: string) => writes.push(s) };
}

describe('ProgressBar', () => {
  it('draws nothing when the stream is not a terminal', () => {
    const stream = fakeStream(false);
    new ProgressBar(stream, 'epoch 1/2', 10).update(5, 'loss 1.0');
    expect(stream.writes).toEqual([]);
  });

  it('redraws in place on a terminal and clears itself', () => {
    const stream = fakeStream(true);
    const bar = new ProgressBar(stream, 'epoch 1/2', 10);
    bar.update(10, 'loss 1.0');
    bar.clear();
    expect(stream.writes[0]).toBe(`\repoch 1/2 ${'█'.repeat(24)} 100% loss 1.0\x1b[K`);
    expect(stream.writes[1]).toBe('\r\x1b[K');
  });

  it('is due on a terminal for its first draw and at the end, not again within 100 ms', () => {
    const bar = new ProgressBar(fakeStream(true), 'epoch 1/2', 10);
    expect(bar.due(1)).toBe(true);
    bar.update(1, 'loss 1.0');
    expect(bar.due(2)).toBe(false);
    expect(bar.due(10)).toBe(true);
    expect(new ProgressBar(fakeStream(false), 'epoch 1/2', 10).due(10)).toBe(false);
  });
});

describe('transferProgress', () => {
  it('writes one line per file when the stream is not a terminal', () => {
    const stream = fakeStream(false);
    const report = transferProgress(stream);
    for (const r of [100, 200, 300, 300]) report('mnist/a.gz', r, 300);
    report('mnist/b.gz', 5, undefined);
    expect(stream.writes).toEqual(['downloading mnist/a.gz (0.0 MB)\n', 'downloading mnist/b.gz\n']);
  });

  it('draws a bar on a terminal and ends with one line once the file completes', () => {
    const stream = fakeStream(true);
    const report = transferProgress(stream);
    report('mnist/a.gz', 0, 2_000_000);
    report('mnist/a.gz', 2_000_000, 2_000_000);
    report('mnist/a.gz', 2_000_000, 2_000_000);
    expect(stream.writes[0]).toBe(`\rmnist/a.gz ${'░'.repeat(24)}   0% 0.0 MB / 2.0 MB\x1b[K`);
    expect(stream.writes.slice(1)).toEqual(['\r\x1b[K', 'mnist/a.gz 2.0 MB\n']);
  });
});
