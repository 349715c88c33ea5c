/** A problem with input data: a dataset file, a dataset name or a data-related flag. The CLI exits with code 2. */
export class DataError extends Error {
  override readonly name: string = 'DataError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
