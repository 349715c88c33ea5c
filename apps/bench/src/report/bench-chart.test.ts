import { describe, expect, it } from 'vitest';
import { ruleLabels } from './bench-chart.js';

describe('ruleLabels', () => {
  const rule = (samples_per_s: number) => ({ samples_per_s });

  it('writes labels of rules far apart at the left edge, lowest first', () => {
    const labels = ruleLabels([rule(9000), rule(1000)], [1000, 9000], 300);
    expect(labels).toEqual([
      { samples_per_s: 1000, x: 0 },
      { samples_per_s: 9000, x: 0 },
    ]);
  });

  it('moves a label right of the one below it when their rules are closer than a line of text', () => {
    // On a 300 px log axis from 1,000 to 10,000, 5,447 and 5,538 are 2 px apart; 8,000 is 55 px above.
    const labels = ruleLabels([rule(5538), rule(5447), rule(8000), rule(5600)], [1000, 10_000], 300);
    expect(labels.map((l) => [l.samples_per_s, l.x])).toEqual([
      [5447, 0],
      [5538, 60],
      [5600, 120],
      [8000, 0],
    ]);
  });

  it('copes with a single figure (an axis of no span)', () => {
    expect(ruleLabels([rule(500)], [500], 300)).toEqual([{ samples_per_s: 500, x: 0 }]);
  });
});
