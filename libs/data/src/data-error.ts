import { InputError } from '@gradq/cli';

/** A problem with input data: a dataset file, a dataset name, a sample count, batch or shard count. Exit code 2. */
export class DataError extends InputError {
  override name = 'DataError';
}
