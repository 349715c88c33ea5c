import { homedir } from 'node:os';
import { join } from 'node:path';

/** The download cache root: $GRADQ_DATA_DIR if set, else ~/.cache/gradq. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.GRADQ_DATA_DIR;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'gradq');
}

/** Where a dataset file lives below a data root (the cache or a --data-dir): `<root>/<dataset>/<file>.gz`. */
export function datasetFilePath(root: string, dataset: string, file: string): string {
  return join(root, dataset, `${file}.gz`);
}
