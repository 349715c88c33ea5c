import type { Evaluation } from '@gradq/train';

/** The human-readable report of `gradq eval`: accuracy, per-class accuracy, confusion matrix. */
export function formatEvaluation(dataset: string, classNames: readonly string[], e: Evaluation): string {
  const confusion = e.confusion ?? [];
  const nameWidth = Math.max(...classNames.map((c) => c.length)) + 4;
  const lines = [
    `${dataset} test set: ${e.count} samples, accuracy ${pct(e.accuracy)}, mean loss ${e.loss.toFixed(4)}`,
    '',
    'per-class accuracy:',
  ];
  classNames.forEach((name, c) => {
    const row = confusion[c] ?? [];
    const total = row.reduce((a, b) => a + b, 0);
    lines.push(`  ${`${c} ${name}`.padEnd(nameWidth)} ${pct(total ? row[c] / total : 0).padStart(7)}  (${row[c]}/${total})`);
  });
  const cell = Math.max(5, String(e.count).length + 1);
  lines.push('', 'confusion matrix (rows: true class, columns: predicted class):');
  lines.push(`  ${''.padEnd(nameWidth)}${classNames.map((_, c) => String(c).padStart(cell)).join('')}`);
  classNames.forEach((name, c) => {
    lines.push(`  ${`${c} ${name}`.padEnd(nameWidth)}${(confusion[c] ?? []).map((v) => String(v).padStart(cell)).join('')}`);
  });
  return `${lines.join('\n')}\n`;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}
