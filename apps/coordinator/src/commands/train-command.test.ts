import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeModel } from '@gradq/nn';
import { expectInputError as expectInputErrorAt, lastJson, runCli, SHARED_DATA, spawnCli } from '../testing/run-cli.js';
import { PNG } from 'pngjs';

const BASE = ['train', '--local', '--data-dir', SHARED_DATA, '--epochs', '1'];
const SMALL = [...BASE, '--model', 'mlp:784-32-10', '--train-samples', '2048', '--batch', '64'];

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'gradq-train-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A data root whose mnist/ holds the real files, with `file` replaced by `edit(decompressed bytes)`. */
function brokenRoot(name: string, file: string, edit: (raw: Buffer) => Buffer, gzip = true): string {
  const root = join(tmp, name);
  mkdirSync(join(root, 'mnist'), { recursive: true });
  for (const f of readdirSync(join(SHARED_DATA, 'mnist'))) copyFileSync(join(SHARED_DATA, 'mnist', f), join(root, 'mnist', f));
  const path = join(root, 'mnist', `${file}.gz`);
  const edited = edit(gunzipSync(readFileSync(path)));
  writeFileSync(path, gzip ? gzipSync(edited) : edited);
  return root;
}

/** Runs a command that must fail on input: exit 2, one line on stderr, no output file. */
function expectInputError(args: string[], pattern: RegExp): Promise<void> {
  return expectInputErrorAt(args, pattern, join(tmp, `never-${Math.random()}.gradq`));
}

describe('gradq train --local', () => {
  it('prints a JSON summary whose params_sha256 repeats for the same seed', async () => {
    const [a, b] = await Promise.all([runCli([...SMALL, '--shards', '4', '--json']), runCli([...SMALL, '--shards', '4', '--json'])]);
    expect(a.code, a.stderr).toBe(0);
    const ja = lastJson(a.stdout);
    for (const key of [
      'dataset',
      'model',
      'epochs',
      'steps',
      'batch',
      'shards',
      'test_accuracy',
      'train_samples_per_s',
      'params_sha256',
      'wall_s',
    ]) {
      expect(ja).toHaveProperty(key);
    }
    expect(ja).toMatchObject({ dataset: 'mnist', model: 'mlp:784-32-10', epochs: 1, steps: 32, batch: 64, shards: 4 });
    expect(ja.test_accuracy).toBeGreaterThan(0.5); // 32 steps of a tiny model; chance is 0.1
    expect(ja.params_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(lastJson(b.stdout).params_sha256).toBe(ja.params_sha256);
    // Steady rate: the 31 steps after the first; all rates and times positive.
    expect(ja.steady_samples_per_s).toBeGreaterThan(0);
    expect(ja.first_step_ms).toBeGreaterThan(0);
    expect(ja.train_samples_per_s).toBeGreaterThan(0);
  });

  it('gives a different params_sha256 for a different seed', async () => {
    const [a, b] = await Promise.all([runCli([...SMALL, '--json', '--seed', '1']), runCli([...SMALL, '--json', '--seed', '2'])]);
    expect(lastJson(a.stdout).params_sha256).not.toBe(lastJson(b.stdout).params_sha256);
  });

  it('saves a model that gradq eval reports per class with a confusion matrix', async () => {
    const out = join(tmp, 'fashion.gradq');
    const t = await runCli([...SMALL, '--dataset', 'fashion-mnist', '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    const e = await runCli(['eval', '--model', out, '--dataset', 'fashion-mnist', '--data-dir', SHARED_DATA]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/fashion-mnist test set: 10000 samples, accuracy \d+\.\d\d%/);
    for (const name of ['T-shirt/top', 'Trouser', 'Ankle boot']) expect(e.stdout).toContain(name);
    expect(e.stdout).toContain('confusion matrix');
    const j = await runCli(['eval', '--model', out, '--dataset', 'fashion-mnist', '--data-dir', SHARED_DATA, '--json']);
    const summary = lastJson(j.stdout) as { confusion: number[][]; correct: number };
    const diagonal = summary.confusion.reduce((s, row, i) => s + row[i], 0);
    expect(diagonal).toBe(summary.correct);
    // --report: the page, and a picture of it rendered in Chromium; without Chromium the page and a note.
    const report = join(tmp, 'report');
    const r = await runCli(['eval', '--model', out, '--dataset', 'fashion-mnist', '--data-dir', SHARED_DATA, '--report', report]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(report, 'index.html'), 'utf8')).toContain('Confusion matrix');
    const png = PNG.sync.read(readFileSync(join(report, 'report.png')));
    expect(png.width).toBe(1100);
    expect(png.height).toBeGreaterThan(600);
    const bare = join(tmp, 'report-bare');
    const b = await spawnCli(['eval', '--model', out, '--dataset', 'fashion-mnist', '--data-dir', SHARED_DATA, '--report', bare], {
      GRADQ_CHROMIUM: join(tmp, 'no-chromium'),
    }).done;
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/note: .*report\.png not written: no Chromium at .*no-chromium: install it/);
    expect(existsSync(join(bare, 'index.html'))).toBe(true);
    expect(existsSync(join(bare, 'report.png'))).toBe(false);
  });
});

describe('bad input: one error line, exit code 2, nothing written', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['negative lr', ['--lr', '-0.1'], /--lr -0\.1: must be > 0/],
    ['batch 0', ['--batch', '0'], /--batch 0: must be >= 1/],
    ['shards > batch', ['--batch', '8', '--shards', '9'], /--shards: 9 shards exceed a batch of 8/],
    ['unknown optimizer', ['--optimizer', 'rmsprop'], /--optimizer rmsprop: unknown value/],
    ['unknown dataset', ['--dataset', 'cifar10'], /--dataset cifar10: unknown value/],
    ['unknown model spec', ['--model', 'rnn:3x3'], /--model: unknown model spec "rnn:3x3"/],
    [
      'a cnn spec whose input is not an image',
      ['--model', 'cnn:3x3/dense10'],
      /--model: model spec "cnn:3x3\/dense10": input "3x3" is not CxHxW/,
    ],
    ['model that does not fit the data', ['--model', 'mlp:100-10'], /--model: model mlp:100-10 takes \[100\] but mnist has 784 inputs/],
    ['unknown schedule', ['--schedule', 'linear'], /--schedule: schedule linear: unknown schedule/],
    ['too many training samples', ['--train-samples', '70000'], /^gradq: error: --train-samples: sample limit 70000 exceeds the 60000/],
    ['a number that is not decimal', ['--lr', '0x10'], /--lr 0x10: not a decimal number/],
    [
      'a cnn whose input is as many floats in another shape',
      ['--model', 'cnn:4x14x14/conv3x4/relu/dense10'],
      /--model: model cnn:4x14x14\/conv3x4\/relu\/flatten\/dense10 takes \[4, 14, 14\] but mnist has 1x28x28 images/,
    ],
    [
      'a layer that does not fit the one before',
      ['--model', 'cnn:1x28x28/pool2/pool2/pool2/pool2/pool2/dense10'],
      /--model: model spec "cnn:1x28x28\/pool2.*": 2×2 max pooling needs an image of at least 2×2, got 1×1/,
    ],
    [
      'activations larger than a shard may hold',
      ['--model', 'cnn:1x28x28/conv3x2048same/pool2/pool2/pool2/dense10', '--batch', '256', '--shards', '1'],
      /--batch: a shard of 256 samples of model .* MB of activations, more than 1024 MB/,
    ],
    [
      'a batch larger than the data',
      ['--train-samples', '512', '--batch', '100000', '--shards', '1'],
      /--batch: a batch of 100000 is larger than the 512 training samples/,
    ],
    ['unknown flag', ['--learning-rate', '1'], /unknown flag --learning-rate/],
    ['a secret for a run without messages', ['--secret-file', 'secret'], /--secret-file has no meaning with --local/],
  ];
  it.each(cases)('%s', async (_name, extra, pattern) => {
    await expectInputError([...BASE, ...extra], pattern);
  });

  it('a truncated .gz', async () => {
    const root = brokenRoot('truncated', 't10k-labels-idx1-ubyte', (raw) => raw, false);
    const path = join(root, 'mnist', 't10k-labels-idx1-ubyte.gz');
    const gz = gzipSync(gunzipSync(readFileSync(join(SHARED_DATA, 'mnist', 't10k-labels-idx1-ubyte.gz'))));
    writeFileSync(path, gz.subarray(0, gz.length >> 1));
    await expectInputError(['train', '--local', '--data-dir', root], /t10k-labels-idx1-ubyte.*(truncated|corrupt)/);
  });

  it('a wrong magic number', async () => {
    const root = brokenRoot('magic', 'train-labels-idx1-ubyte', (raw) => Buffer.concat([Buffer.from([0, 0, 8, 3]), raw.subarray(4)]));
    await expectInputError(['train', '--local', '--data-dir', root], /train-labels-idx1-ubyte.*magic.*0x00000803.*0x00000801/);
  });

  it('image and label counts that disagree', async () => {
    const root = brokenRoot('count', 't10k-labels-idx1-ubyte', (raw) => {
      const cut = Buffer.from(raw.subarray(0, raw.length - 1));
      cut.writeUInt32BE(9999, 4);
      return cut;
    });
    await expectInputError(['train', '--local', '--data-dir', root], /10000 images.*9999 labels/);
  });

  it('a bad --sync mode, or outer-optimizer flags that do not fit it, in one line', async () => {
    await expectInputError([...SMALL, '--sync', 'local:0'], /--sync: sync mode local:0: H "0" is not a whole number >= 1/);
    await expectInputError([...SMALL, '--sync', 'local:x'], /--sync: sync mode local:x: H "x" is not a whole number >= 1/);
    await expectInputError([...SMALL, '--sync', 'foo'], /unknown sync mode "foo" \(use sync or local:H/);
    await expectInputError([...SMALL, '--outer', 'nesterov'], /--outer nesterov is for local SGD only/);
    await expectInputError([...SMALL, '--sync', 'local:4', '--outer-momentum', '0.5'], /--outer-momentum needs --outer nesterov/);
    await expectInputError(
      [...SMALL, '--sync', 'local:4', '--outer', 'nesterov', '--outer-momentum', '1'],
      /--outer-momentum 1: use a number in \(0, 1\)/,
    );
  });

  it('a missing data folder names the path it looked for', async () => {
    await expectInputError(['train', '--local', '--data-dir', join(tmp, 'nowhere')], /nowhere/);
  });

  it('a checkpoint folder that cannot be made, before any training', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const r = await runCli([...SMALL, '--checkpoint', join(file, 'ck')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^gradq: error: --checkpoint .*a-file\/ck: cannot create the folder \(ENOTDIR\)/);
  });

  it('a data root whose dataset file is a folder', async () => {
    const root = join(tmp, 'dir-root');
    mkdirSync(join(root, 'mnist', 'train-images-idx3-ubyte.gz'), { recursive: true });
    await expectInputError(['train', '--local', '--data-dir', root], /--data-dir: mnist: .*train-images-idx3-ubyte.gz is a folder/);
  });

  it('an output path that is a folder, before any training', async () => {
    const r = await runCli([...SMALL, '--out', tmp]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^gradq: error: --out .*: is a folder \(name a file in it/);
  });

  it('an output folder that does not exist, before any training', async () => {
    const r = await runCli([...SMALL, '--out', join(tmp, 'no-such-dir', 'm.gradq')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^gradq: error: --out .*no-such-dir.* does not exist/);
  });

  it('too many epochs', async () => {
    await expectInputError(['train', '--local', '--data-dir', SHARED_DATA, '--epochs', '1e9'], /--epochs 1e9: must be <= 10000/);
  });

  it('a run that diverges: one line with the step, exit code 3', async () => {
    const r = await runCli([...SMALL, '--lr', '1e308']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(
      /^gradq: step \d+: gradient (NaN|-?Infinity) at index \d+; training diverged \(try a lower learning rate\)$/,
    );
    expect(r.stderr).not.toContain('internal error');
  });

  it('eval of a file that is not a model', async () => {
    const bad = join(tmp, 'not-a-model.gradq');
    writeFileSync(bad, 'hello');
    const r = await runCli(['eval', '--model', bad, '--data-dir', SHARED_DATA]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('not-a-model.gradq');
  });
});

describe('damaged checkpoints and model files: one error line, exit code 2', () => {
  /** `file` with one bit flipped in its parameters (found by decoding it), `at` bytes into them. */
  function flipParameter(file: string, at: number): void {
    const bytes = readFileSync(file);
    const { params } = decodeModel(bytes, file).model;
    const start = bytes.indexOf(Buffer.from(params.buffer, params.byteOffset, params.byteLength));
    expect(start).toBeGreaterThan(0);
    bytes[start + at] ^= 0x08;
    writeFileSync(file, bytes);
  }
  const oneLine = (stderr: string): string[] => stderr.trim().split('\n');

  it('--resume refuses a checkpoint with a flipped bit and names the previous one, from which the run ends exact', async () => {
    const dir = join(tmp, 'damaged-ckpt');
    const args = [...SMALL, '--checkpoint', dir, '--checkpoint-every', '10', '--json'];
    const full = await runCli(args); // 32 steps: checkpoints after steps 10, 20 and 30
    expect(full.code, full.stderr).toBe(0);
    const file = join(dir, 'checkpoint.gradq');
    const previous = join(dir, 'checkpoint.gradq.prev');
    expect(existsSync(previous)).toBe(true);
    flipParameter(file, 4 * 1000 + 2);
    const refused = await runCli([...args, '--resume']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(oneLine(refused.stderr)).toHaveLength(1);
    expect(refused.stderr).toMatch(
      /^gradq: error: --resume: .*checkpoint\.gradq: damaged: the SHA-256 of its content is [0-9a-f]{16}…, the file records [0-9a-f]{16}…/,
    );
    expect(refused.stderr.trim()).toMatch(new RegExp(`e\\.g\\. the previous checkpoint: mv ${previous} ${file}$`));
    renameSync(previous, file);
    const resumed = await runCli([...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .*checkpoint\.gradq at step 20\n/);
    expect(lastJson(resumed.stdout).params_sha256).toBe(lastJson(full.stdout).params_sha256);
  });

  it('eval and predict refuse a model file with a flipped bit', async () => {
    const out = join(tmp, 'damaged.gradq');
    const t = await runCli([...SMALL, '--out', out]);
    expect(t.code, t.stderr).toBe(0);
    expect((await runCli(['eval', '--model', out, '--data-dir', SHARED_DATA])).code).toBe(0);
    flipParameter(out, 77);
    for (const args of [
      ['eval', '--model', out, '--data-dir', SHARED_DATA],
      ['predict', '--model', out, join(tmp, 'any.png')],
    ]) {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/^gradq: error: .*damaged\.gradq: damaged: the SHA-256 of its content is/)]);
    }
  });
});
