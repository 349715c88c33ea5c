import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from './invalid-message-error.js';
import { checkLeaseJobSignature, signLeaseJob, validateLeaseJob, type LeaseJob } from './lease-job.js';
import { MessageSigner } from './signing.js';

const LEASE: LeaseJob = {
  v: 2, kind: 'lease', run: 'r1', step: 8, steps: 4, shard: 0, count: 4, shards: 4, attempt: 0, set: 3, dataset: 'mnist',
  trainSamples: 512, seed: 1, batch: 64, model: 'mlp:784-16-10', shift: 0, codec: 'none', paramsPrefix: 'q:run:r1:params:',
  clockKey: 'q:run:r1:clock', resultsKey: 'q:run:r1:results', stepping: true, stateKey: 'q:run:r1:optimizer:8', stateBuffers: 2,
  stateT: 8, optimizer: 'adam', lr: 0.001, schedule: 'cosine', warmup: 0, momentum: 0.9, weightDecay: 0, epochs: 2,
}; // prettier-ignore

describe('lease jobs', () => {
  it('accepts a stepping lease of every shard, and a plain one of some', () => {
    expect(validateLeaseJob(LEASE)).toEqual(LEASE);
    expect(validateLeaseJob({ ...LEASE, stepping: false, shard: 2, count: 2, stateKey: '', stateBuffers: 0 })).toMatchObject({ shard: 2 });
    expect(validateLeaseJob({ ...LEASE, optimizer: 'sgd', stateKey: '', stateBuffers: 0 })).toMatchObject({ optimizer: 'sgd' });
  });

  it.each([
    [{ v: 1 }, /field v is 1/],
    [{ stepping: 'yes' }, /field stepping is "yes"/],
    [{ optimizer: 'lion' }, /field optimizer is "lion"/],
    [{ lr: 0 }, /field lr is 0/],
    [{ stateT: -1 }, /field stateT is -1/],
    [{ shard: 1, count: 3 }, /a stepping lease holds all 4 shards, not 1..3/],
    [{ stateKey: '' }, /state key "" for 2 state buffers/],
    [{ codec: 'int8' }, /keeps residuals/],
    [{ codec: 'fp16' }, /a stepping lease sends its sums uncompressed, not as fp16/],
  ])('refuses %j, naming what is wrong', (patch, why) => {
    const check = () => validateLeaseJob({ ...LEASE, ...patch });
    expect(check).toThrow(InvalidMessageError);
    expect(check).toThrow(why);
  });

  it('signs every field: a stepping lease’s optimizer and state cannot be changed under its signature', () => {
    const signer = new MessageSigner(Buffer.from('lease secret'));
    const signed = signLeaseJob(LEASE, signer);
    expect(() => checkLeaseJobSignature(signed, signer)).not.toThrow();
    for (const patch of [{ stateT: 9 }, { lr: 0.01 }, { stepping: false }, { stateKey: 'q:run:r1:optimizer:9' }]) {
      expect(() => checkLeaseJobSignature({ ...signed, ...patch }, signer)).toThrow(/signature/);
    }
  });
});
