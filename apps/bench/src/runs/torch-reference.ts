import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir } from '@gradq/data';
import { formatModelSpec, type CnnSpec } from '@gradq/nn';
import { runChild } from './child-process.js';
import type { ReferenceResult } from './reference.js';

/** The PyTorch reference for convolutional models: tools/torch_cnn.py (adapted from ../shared/bench/torch_cnn.py). */
export const TORCH_SCRIPT = fileURLToPath(new URL('../../../../tools/torch_cnn.py', import.meta.url));
/** Debian's python3-torch installs for the system interpreter. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Why the PyTorch reference cannot run here, or undefined when it can (python3 imports torch, the script is there). */
export function torchUnavailable(spec: CnnSpec): string | undefined {
  const [c, h, w] = spec.input;
  if (c !== 1 || h !== 28 || w !== 28) return `it trains MNIST (1x28x28 images), not ${formatModelSpec(spec)}`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' });
  if (probe.error !== undefined || probe.status !== 0) return `${PYTHON} cannot import torch (apt-get install python3-torch)`;
  if (!existsSync(TORCH_SCRIPT)) return `${TORCH_SCRIPT} is missing`;
  return undefined;
}

/**
 * Runs tools/torch_cnn.py on ROOT/mnist (or the download cache's mnist) with one thread: the same architecture, the
 * same training samples, epochs and batch, Adam with cosine decay, PyTorch's own initialisation and data order.
 */
export async function runTorchReference(o: {
  dataDir?: string;
  epochs: number;
  spec: CnnSpec;
  batch: number;
  trainSamples: number;
}): Promise<ReferenceResult> {
  const data = join(o.dataDir ?? defaultCacheDir(), 'mnist');
  const args = [TORCH_SCRIPT, data, String(o.epochs), formatModelSpec(o.spec), String(o.batch), String(o.trainSamples)];
  const r = await runChild(PYTHON, args, { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const m = /train_samples=(\d+) samples_per_s=(\d+(?:\.\d+)?) test_acc=(\d+(?:\.\d+)?)/.exec(line);
  if (r.code !== 0 || !m) {
    const tail = r.stderr.trim().split('\n').slice(-5).join('\n');
    throw new Error(`PyTorch reference: ${PYTHON} ${args.join(' ')} exited with ${r.code ?? r.signal}\n${tail || line}`);
  }
  return { train_samples: Number(m[1]), samples_per_s: Number(m[2]), test_accuracy: Number(m[3]), line };
}
