/**
 * Bad input from outside (a flag, a file, a dataset, a model spec): the one base class that `gradq` turns into a
 * one-line `gradq: error:` message and exit code 2. Libraries throw subclasses in their own terms and may name the
 * setting the value came from in `about` (a camelCase configuration key such as `trainSamples`); the command line
 * names its flag (`--train-samples`), so that no library needs to know flag names.
 */
export class InputError extends Error {
  override name = 'InputError';
  /** The configuration key whose value was bad, when there is one (e.g. `shards`, `trainSamples`). */
  readonly about?: string;

  constructor(message: string, options: { about?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.about !== undefined) this.about = options.about;
  }
}
