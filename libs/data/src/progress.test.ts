import { describe, expect, it } from 'vitest';
import { stderrProgress } from './progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { isTTY, writes, write: (s: string) => writes.push(s) };
}

describe('stderrProgress', () => {
  it('writes one line per file when stderr is not a TTY', () => {
    const stream = fakeStream(false);
    const report = stderrProgress(stream);
    for (const r of [100, 200, 300, 300]) report('mnist/a.gz', r, 300);
    report('mnist/b.gz', 5, undefined);
    expect(stream.writes).toEqual(['downloading mnist/a.gz (0.0 MB)\n', 'downloading mnist/b.gz\n']);
  });

  it('draws a bar on a TTY and ends the line once when the file completes', () => {
    const stream = fakeStream(true);
    const report = stderrProgress(stream);
    report('mnist/a.gz', 0, 2_000_000);
    report('mnist/a.gz', 2_000_000, 2_000_000);
    report('mnist/a.gz', 2_000_000, 2_000_000);
    expect(stream.writes).toHaveLength(2);
    expect(stream.writes[0]).toContain('[..............................]   0%');
    expect(stream.writes[1]).toContain('[##############################] 100% 2.0 MB / 2.0 MB');
    expect(stream.writes[1].endsWith('\n')).toBe(true);
  });
});
