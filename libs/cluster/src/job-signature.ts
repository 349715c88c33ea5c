import { InvalidMessageError } from './invalid-message-error.js';
import type { MessageSigner } from './signing.js';

/**
 * How the coordinator signs a job (shard or round) with the run's secret, and how a worker checks it: an HMAC
 * (kind `kind`: 'shard-job', 'round-job', 'lease-job') over the values of every field but `sig`, in the order of the job's
 * field table, as JSON. Absent without a secret, so that an unsigned run's jobs are what they always were.
 */
export class JobSignature<J extends { sig?: string }> {
  constructor(
    private readonly kind: 'shard-job' | 'round-job' | 'lease-job',
    /** The job's fields the signature covers (every field but `sig`), in a fixed order. */
    private readonly fields: ReadonlyArray<Exclude<keyof J, 'sig'>>,
  ) {}

  /** `job` with its signature (`sig`). */
  sign(job: J, signer: MessageSigner): J {
    return { ...job, sig: signer.sign(this.kind, [this.text(job)]).toString('hex') };
  }

  /**
   * Checks a (validated) job's signature against the worker's secret (`signer`), or that there is none when the
   * worker has no secret; InvalidMessageError otherwise.
   */
  check(job: J, signer: MessageSigner | undefined): void {
    const what = this.kind.replace('-', ' ');
    const { sig } = job;
    if (signer === undefined) {
      if (sig !== undefined) throw new InvalidMessageError(`${what} is signed, but this worker has no secret (give it the run’s secret)`);
      return;
    }
    if (sig === undefined) {
      throw new InvalidMessageError(`${what} is not signed (from a coordinator without the secret, or forged); job refused`);
    }
    const signature = typeof sig === 'string' && /^[0-9a-f]{64}$/.test(sig) ? Buffer.from(sig, 'hex') : Buffer.alloc(0);
    if (!signer.verify(this.kind, signature, [this.text(job)])) {
      throw new InvalidMessageError(`${what} has a bad signature (made with another secret, or changed since); job refused`);
    }
  }

  /** What the signature is computed over: the fields' values, in their order, as JSON. */
  private text(job: J): string {
    return JSON.stringify(this.fields.map((key) => job[key]));
  }
}
