import { formatCount } from '@gradq/cli';
import { PROJECTED_MODES, projectSamplesPerS, TEN_GBE_BYTES_PER_S, type StepModel } from './step-model.js';

/** Worker counts projected by `gradq bench --fit`. */
export const PROJECTED_WORKERS = [16, 64, 256] as const;

/** The fitted model, its points, and the projections, as printed under the bench table. */
export function formatStepModel(m: StepModel): string {
  const ms = (x: number): string => x.toFixed(2);
  const lines = [
    `step-time model, batch ${m.batch}, ${m.shards} shard${m.shards === 1 ? '' : 's'}, ${m.cores} cores (fitted to ${m.points.length} cluster runs):`,
    `  t_step(N) = ${ms(m.computeMs)} ms × c(N) + ${ms(m.fixedMs)} ms + ${ms(m.perWorkerMs)} ms × N + bytes(N) / bandwidth` +
      `   (rms error ${ms(m.rmsErrorMs)} ms)`,
    `  c(N) = max(⌈K/N⌉/K, 1/min(N, K, cores)); bytes(N) = 4 × ${formatCount(m.parameters)} × min(N, K) down + K results up`,
    '  workers  measured ms  model ms',
    ...m.points.map((p) => `  ${String(p.workers).padStart(7)}  ${ms(p.measuredMs).padStart(11)}  ${ms(p.modelMs).padStart(8)}`),
    `  projected samples/s on 10 GbE, one worker per machine, K = N shards (the same batch of ${m.batch}):`,
    `  ${'mode'.padEnd(12)}${PROJECTED_WORKERS.map((n) => `N=${n}`.padStart(11)).join('')}`,
    ...PROJECTED_MODES.map(
      (mode) =>
        `  ${mode.name.padEnd(12)}${PROJECTED_WORKERS.map((n) => formatCount(projectSamplesPerS(m, n, mode, TEN_GBE_BYTES_PER_S)).padStart(11)).join('')}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}
