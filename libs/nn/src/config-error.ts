import { InputError } from '@gradq/cli';

/** A bad model spec, hyperparameter or saved file: the message quotes the value and says what is accepted. */
export class ConfigError extends InputError {
  override name = 'ConfigError';
}
