import { describe, expect, it } from 'vitest';
import { InvalidMessageError } from './invalid-message-error.js';
import {
  checkRoundJobSignature,
  signRoundJob,
  validateRoundJob,
  validateRoundResult,
  type RoundJob,
  type RoundResult,
} from './round-job.js';
import { validateShardJob } from './shard-job.js';
import { MessageSigner } from './signing.js';

const JOB: RoundJob = {
  v: 2, kind: 'round', run: 'r1', step: 8, steps: 4, shard: 2, replicas: 2, shards: 4, attempt: 0, dataset: 'mnist', trainSamples: 600,
  seed: 3, batch: 64, model: 'mlp:784-32-10', shift: 1, optimizer: 'adam', lr: 0.001, schedule: 'cosine', warmup: 0,
  momentum: 0.9, weightDecay: 0, epochs: 2, paramsKey: 'p:8', stateKeys: ['s:8:2', 's:8:3'], stateBuffers: 2, stateTs: [8, 8], resultsKey: 'res',
}; // prettier-ignore

const RESULT: RoundResult = {
  v: 1, kind: 'round', run: 'r1', step: 8, shard: 2, through: 2, attempt: 0, count: 64, lossSum: 10, correct: 30,
  worker: 'w', fetchMs: 1, computeMs: 2, uploadMs: 0, steps: 4, stateT: 12,
}; // prettier-ignore
const EXPECTED = { run: 'r1', step: 8, shard: 2, count: 64, steps: 4, stateT: 12 };

describe('round jobs', () => {
  it('accept a well-formed job and refuse a bad field, replicas beyond K, state keys or counters not one a replica, a state key without buffers', () => {
    expect(validateRoundJob(JOB)).toEqual(JOB);
    expect(() => validateRoundJob({ ...JOB, optimizer: 'lbfgs' })).toThrow(/round job: field optimizer is "lbfgs"/);
    expect(() => validateRoundJob({ ...JOB, steps: 0 })).toThrow(/field steps is 0/);
    expect(() => validateRoundJob({ ...JOB, shard: 3 })).toThrow(/replicas 3..4 of 4 shards/);
    expect(() => validateRoundJob({ ...JOB, replicas: 0 })).toThrow(/field replicas is 0/);
    expect(() => validateRoundJob({ ...JOB, stateKeys: ['s:8:2'] })).toThrow(/1 state keys for 2 replicas/);
    expect(() => validateRoundJob({ ...JOB, stateTs: [8, 8, 8] })).toThrow(/3 state counters for 2 replicas/);
    expect(() => validateRoundJob({ ...JOB, stateTs: [8, -1] })).toThrow(/field stateTs is \[8,-1\]/);
    expect(() => validateRoundJob({ ...JOB, stateKeys: 's:8:2' })).toThrow(/field stateKeys is "s:8:2"/);
    expect(() => validateRoundJob({ ...JOB, stateBuffers: 0 })).toThrow(/state key "s:8:2" for 0 state buffers/);
    expect(() => validateRoundJob({ ...JOB, stateKeys: ['', ''] })).toThrow(/state key "" for 2 state buffers/);
    expect(() => validateRoundJob({ ...JOB, v: 1 })).toThrow(InvalidMessageError);
  });

  it('are refused by a shard-job reader (what an older worker does), by their version', () => {
    expect(() => validateShardJob(JOB)).toThrow(/shard job: field v is 2/);
  });

  it('carry a signature that covers every field', () => {
    const signer = new MessageSigner(Buffer.from('a secret of sixteen bytes or more'));
    const signed = signRoundJob(JOB, signer);
    expect(() => checkRoundJobSignature(signed, signer)).not.toThrow();
    expect(() => checkRoundJobSignature({ ...signed, stateTs: [8, 9] }, signer)).toThrow(/bad signature/);
    expect(() => checkRoundJobSignature(JOB, signer)).toThrow(/not signed/);
    expect(() => checkRoundJobSignature(signed, undefined)).toThrow(/this worker has no secret/);
  });
});

describe('round results', () => {
  it('are accepted only for the work the coordinator computed', () => {
    expect(validateRoundResult(RESULT, EXPECTED)).toEqual(RESULT);
    expect(() => validateRoundResult({ ...RESULT, step: 4 }, EXPECTED)).toThrow(/step is 4, expected 8/);
    expect(() => validateRoundResult({ ...RESULT, count: 63 }, EXPECTED)).toThrow(/count is 63, expected 64/);
    expect(() => validateRoundResult({ ...RESULT, steps: 3 }, EXPECTED)).toThrow(/steps is 3, expected 4/);
    expect(() => validateRoundResult({ ...RESULT, stateT: 11 }, EXPECTED)).toThrow(/stateT is 11, expected 12/);
    expect(() => validateRoundResult({ ...RESULT, through: 3 }, EXPECTED)).toThrow(/through is 3, expected 2/);
    expect(() => validateRoundResult({ ...RESULT, correct: 65 }, EXPECTED)).toThrow(/65 correct of 64 samples/);
    expect(() => validateRoundResult({ ...RESULT, lossSum: Number.NaN }, EXPECTED)).toThrow(/field lossSum/);
  });
});
