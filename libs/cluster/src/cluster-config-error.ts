import { InputError } from '@gradq/cli';

/** A bad Redis URL or queue name: the message quotes it (passwords hidden) and says what is accepted. */
export class ClusterConfigError extends InputError {
  override name = 'ClusterConfigError';
}
