import { InputError } from '@gradq/cli';

/** A checkpoint that cannot be resumed from: not a checkpoint, damaged, or made by a run with other settings. */
export class CheckpointError extends InputError {
  override name = 'CheckpointError';

  constructor(message: string) {
    super(message, { about: 'resume' });
  }
}
