import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from './invalid-message-error.js';
import { checkLeaseJobSignature, leaseRoundJob, signLeaseJob, validateLeaseJob, type LeaseJob } from './lease-job.js';
import { validateRoundJob } from './round-job.js';
import { MessageSigner } from './signing.js';

const LEASE: LeaseJob = {
  v: 3, kind: 'lease', run: 'r1', step: 8, steps: 4, shard: 0, count: 4, shards: 4, attempt: 0, set: 3, dataset: 'mnist',
  trainSamples: 512, seed: 1, batch: 64, model: 'mlp:784-16-10', shift: 0, codec: 'none', paramsPrefix: 'q:run:r1:params:',
  clockKey: 'q:run:r1:clock', resultsKey: 'q:run:r1:results', stepping: true, stateKey: 'q:run:r1:optimizer:8', stateBuffers: 2,
  stateT: 8, optimizer: 'adam', lr: 0.001, schedule: 'cosine', warmup: 0, momentum: 0.9, weightDecay: 0, epochs: 2, rounds: 0,
  stateKeys: [], stateTs: [],
}; // prettier-ignore

/** A round lease of replicas 2 and 3 of 4, local:2. */
const ROUNDS: LeaseJob = {
  ...LEASE, stepping: false, shard: 2, count: 2, stateKey: '', rounds: 2, stateKeys: ['q:run:r1:state:8:2', 'q:run:r1:state:8:3'],
  stateTs: [8, 6],
}; // prettier-ignore

describe('lease jobs', () => {
  it('accepts a stepping lease of every shard, and a plain one of some', () => {
    expect(validateLeaseJob(LEASE)).toEqual(LEASE);
    expect(validateLeaseJob({ ...LEASE, stepping: false, shard: 2, count: 2, stateKey: '', stateBuffers: 0 })).toMatchObject({ shard: 2 });
    expect(validateLeaseJob({ ...LEASE, optimizer: 'sgd', stateKey: '', stateBuffers: 0 })).toMatchObject({ optimizer: 'sgd' });
  });

  it.each([
    [{ v: 2 }, /field v is 2/],
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

  it('accepts a round lease with a state key and counter per replica, and makes its round jobs', () => {
    expect(validateLeaseJob(ROUNDS)).toEqual(ROUNDS);
    expect(validateLeaseJob({ ...ROUNDS, rounds: 10_000 })).toMatchObject({ rounds: 10_000 }); // local:10000: H is not bounded
    const job = leaseRoundJob(ROUNDS, 10, 2, { stateKeys: ['', ''], stateTs: [10, 8] });
    expect(() => validateRoundJob({ ...job, stateBuffers: 0 })).not.toThrow();
    expect(job).toMatchObject({ step: 10, steps: 2, shard: 2, replicas: 2, shards: 4, paramsKey: 'q:run:r1:params:10', stateTs: [10, 8] });
    expect(validateRoundJob(leaseRoundJob(ROUNDS, 8, 2, ROUNDS))).toMatchObject({ stateKeys: ROUNDS.stateKeys, optimizer: 'adam' });
  });

  it.each([
    [{ stateKeys: ['q:run:r1:state:8:2'] }, /1 state keys for 2 replicas/],
    [{ stateTs: [8, 6, 4] }, /3 state counters for 2 replicas/],
    [{ stateKeys: ['', ''] }, /state key "" for 2 state buffers/],
    [{ stepping: true, shard: 0, count: 4 }, /a round lease \(rounds 2\) does not step θ itself/],
    [{ codec: 'fp16' }, /a round lease sends its results uncompressed, not as fp16/],
    [{ rounds: 0 }, /replica state keys in a lease of synchronous steps/],
    [{ rounds: -1 }, /field rounds is -1/],
    [{ rounds: 1.5 }, /field rounds is 1.5/],
  ])('refuses a round lease with %j', (patch, why) => {
    expect(() => validateLeaseJob({ ...ROUNDS, ...patch })).toThrow(why);
  });

  it('signs every field: a stepping lease’s optimizer and state cannot be changed under its signature', () => {
    const signer = new MessageSigner(Buffer.from('lease secret'));
    const signed = signLeaseJob(LEASE, signer);
    expect(() => checkLeaseJobSignature(signed, signer)).not.toThrow();
    for (const patch of [{ stateT: 9 }, { lr: 0.01 }, { stepping: false }, { stateKey: 'q:run:r1:optimizer:9' }, { rounds: 8 }]) {
      expect(() => checkLeaseJobSignature({ ...signed, ...patch }, signer)).toThrow(/signature/);
    }
  });
});
