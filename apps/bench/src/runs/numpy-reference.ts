import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '@gradq/data';
import { runChild } from './child-process.js';
import type { ReferenceResult } from './reference.js';

/** The reference trainer: a copy of ../shared/bench/numpy_mlp.py (with idx.py) in the repository's tools/. */
export const NUMPY_SCRIPT = fileURLToPath(new URL('../../../../tools/numpy_mlp.py', import.meta.url));

/** Why the NumPy reference cannot run here, or undefined when it can (python3 imports numpy, the script is there). */
export function numpyUnavailable(sizes: readonly number[]): string | undefined {
  if (sizes[0] !== 784 || sizes[sizes.length - 1] !== 10) return `it trains MNIST (784 inputs, 10 classes), not mlp:${sizes.join('-')}`;
  const probe = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
  if (probe.error !== undefined || probe.status !== 0) return 'python3 cannot import numpy';
  if (!existsSync(NUMPY_SCRIPT)) return `${NUMPY_SCRIPT} is missing`;
  return undefined;
}

/**
 * Runs tools/numpy_mlp.py on ROOT/mnist (or the download cache's mnist) with one OpenBLAS thread. It always
 * trains full epochs on all 60000 training samples, with its own initialisation.
 */
export async function runNumpyReference(o: {
  dataDir?: string;
  epochs: number;
  sizes: readonly number[];
  batch: number;
}): Promise<ReferenceResult> {
  const data = join(o.dataDir ?? defaultCacheDir(), 'mnist');
  const hidden = o.sizes.slice(1, -1).join(',');
  const args = [NUMPY_SCRIPT, data, String(o.epochs), hidden, String(o.batch)];
  const r = await runChild('python3', args, { ...process.env, OPENBLAS_NUM_THREADS: '1' });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const m = /samples_per_s=(\d+(?:\.\d+)?) test_acc=(\d+(?:\.\d+)?)/.exec(line);
  if (r.code !== 0 || !m) {
    const tail = r.stderr.trim().split('\n').slice(-5).join('\n');
    throw new Error(`NumPy reference: python3 ${args.join(' ')} exited with ${r.code ?? r.signal}\n${tail || line}`);
  }
  return { samples_per_s: Number(m[1]), test_accuracy: Number(m[2]), train_samples: 60000, line };
}
