import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDatasetInfo, loadSplit, type Split } from '@gradq/data';
import { decodeModel, encodeModel, Model, Rng, softmaxCrossEntropy } from '@gradq/nn';
import { lastJson, runCli, SHARED_DATA } from '../testing/run-cli.js';
import { softmax, type Prediction } from './predict-command.js';

const DATASETS = ['mnist', 'fashion-mnist'] as const;
const SAMPLES = 8; // test samples 0..7 of each dataset
const PAGE = { width: 200, height: 150, x: 47, y: 6, k: 5 }; // a sample enlarged 5× at (47, 6) of a 200×150 page
const INK = [20, 30, 90]; // navy ink on cream paper
const PAPER = [250, 245, 230];

let tmp: string;
const tests: Record<string, Split> = {};
const models: Record<string, string> = {};

/** An RGBA picture of sample i: 28×28 gray, or dark on light on the page. */
function picture(split: Split, i: number, onPage: boolean): { width: number; height: number; data: Buffer } {
  const value = (x: number, y: number) => split.pixels[i * 784 + y * 28 + x];
  if (!onPage) {
    const data = Buffer.alloc(784 * 4);
    for (let k = 0; k < 784; k++) {
      const v = value(k % 28, Math.floor(k / 28));
      data.set([v, v, v, 255], 4 * k);
    }
    return { width: 28, height: 28, data };
  }
  const { width, height, x, y, k } = PAGE;
  const data = Buffer.alloc(width * height * 4);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      const [sx, sy] = [Math.floor((px - x) / k), Math.floor((py - y) / k)];
      const a = sx >= 0 && sx < 28 && sy >= 0 && sy < 28 ? value(sx, sy) / 255 : 0;
      data.set([...INK.map((c, j) => Math.round(a * c + (1 - a) * PAPER[j])), 255], 4 * (py * width + px));
    }
  }
  return { width, height, data };
}

function writePng(file: string, p: { width: number; height: number; data: Buffer }, colorType: 0 | 2): string {
  const png = new PNG({ width: p.width, height: p.height });
  p.data.copy(png.data);
  writeFileSync(file, PNG.sync.write(png, { colorType }));
  return file;
}

/** The images of sample i: `${name}-${i}.png` (the sample), `-page.png` and `-page.jpg` (dark on light, RGB, 200×150). */
function images(name: string, i: number): string[] {
  const base = join(tmp, `${name}-${i}`);
  return [`${base}.png`, `${base}-page.png`, `${base}-page.jpg`];
}

/** What the saved model says of the original sample: its class and probabilities (p_c = exp(-loss had c been the label)). */
function reference(name: string, i: number): { class: number; probabilities: number[] } {
  const { model } = decodeModel(readFileSync(models[name]), models[name]);
  const x = Float32Array.from(tests[name].pixels.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
  const predicted = [0];
  model.predict(x, 1, predicted);
  const logits = model.forward(x, 1);
  const probabilities = Array.from({ length: model.classes }, (_, c) =>
    Math.exp(-softmaxCrossEntropy(null, logits, [c], 1, model.classes).lossSum),
  );
  return { class: predicted[0], probabilities };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'gradq-predict-'));
  await Promise.all(
    DATASETS.map(async (name) => {
      models[name] = join(tmp, `${name}.gradq`);
      const args = ['train', '--local', '--data-dir', SHARED_DATA, '--dataset', name, '--model', 'mlp:784-32-10'];
      const r = await runCli([...args, '--train-samples', '4096', '--epochs', '1', '--out', models[name]]);
      expect(r.code, r.stderr).toBe(0);
      const split = await loadSplit(name, 'test', { dataDir: SHARED_DATA });
      tests[name] = split;
      for (let i = 0; i < SAMPLES; i++) {
        const [sample, pagePng, pageJpg] = images(name, i);
        writePng(sample, picture(split, i, false), 0);
        writePng(pagePng, picture(split, i, true), 2);
        writeFileSync(pageJpg, jpeg.encode(picture(split, i, true), 90).data);
      }
    }),
  );
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('gradq predict', () => {
  it.each(DATASETS)(
    '%s: predicts each image as the model predicts its sample; the sample itself with the same probabilities',
    async (name) => {
      const files = Array.from({ length: SAMPLES }, (_, i) => images(name, i)).flat();
      const r = await runCli(['predict', '--model', models[name], '--json', ...files]);
      expect(r.code, r.stderr).toBe(0);
      const out = lastJson(r.stdout) as { model: string; dataset: string; predictions: Prediction[]; errors: unknown[] };
      expect(out).toMatchObject({ model: 'mlp:784-32-10', dataset: name, errors: [] });
      expect(out.predictions.map((p) => p.file)).toEqual(files);
      const { classNames } = getDatasetInfo(name);
      for (let i = 0; i < SAMPLES; i++) {
        const expected = reference(name, i);
        const [sample, ...pages] = out.predictions.slice(3 * i, 3 * i + 3);
        for (const p of [sample, ...pages]) {
          expect(p.class, p.file).toBe(expected.class);
          expect(p.name).toBe(classNames[expected.class]);
          expect(p.top).toHaveLength(3);
          expect(p.top[0]).toEqual({ class: p.class, name: p.name, p: p.probabilities[p.class] });
          expect(p.top[1].p).toBeLessThanOrEqual(p.top[0].p);
          expect(p.top[2].p).toBeLessThanOrEqual(p.top[1].p);
        }
        expect(sample.inverted).toBe(false);
        for (let c = 0; c < classNames.length; c++) expect(sample.probabilities[c]).toBeCloseTo(expected.probabilities[c], 6);
        expect(pages.map((p) => p.inverted)).toEqual([true, true]);
      }
    },
  );

  it('prints one line per image: its class name, then the --top K probabilities', async () => {
    const files = images('fashion-mnist', 0).concat(images('fashion-mnist', 1));
    const [text, json] = await Promise.all([
      runCli(['predict', '--model', models['fashion-mnist'], '--top', '2', ...files]),
      runCli(['predict', '--model', models['fashion-mnist'], '--top', '2', '--json', ...files]),
    ]);
    expect(text.code, text.stderr).toBe(0);
    const predictions = (lastJson(json.stdout) as { predictions: Prediction[] }).predictions;
    const pct = (p: number) => `${(100 * p).toFixed(1)}%`;
    expect(text.stdout.trim().split('\n')).toEqual(
      predictions.map((p) => `${p.file}: ${p.name} (${p.top[0].name} ${pct(p.top[0].p)}, ${p.top[1].name} ${pct(p.top[1].p)})`),
    );
  });

  it('gives a file that is no image one error line naming it, still predicts the others, and exits with 2', async () => {
    const [good1, , good2] = images('mnist', 0);
    const empty = join(tmp, 'empty.png');
    const notes = join(tmp, 'notes.txt');
    const cut = join(tmp, 'cut.png');
    const missing = join(tmp, 'missing.jpg');
    writeFileSync(empty, '');
    writeFileSync(notes, 'not an image');
    writeFileSync(cut, readFileSync(good1).subarray(0, 60));
    const args = ['predict', '--model', models.mnist, good1, empty, notes, good2, cut, missing];
    const [text, json] = await Promise.all([runCli(args), runCli([...args, '--json'])]);
    expect(text.code).toBe(2);
    expect(
      text.stdout
        .trim()
        .split('\n')
        .map((l) => l.slice(0, l.indexOf(': '))),
    ).toEqual([good1, good2]);
    const errors = [
      `${empty}: empty file (0 bytes)`,
      `${notes}: not a PNG or JPEG image (it starts with bytes 6e 6f 74 20 61 6e 20 69)`,
      `${cut}: truncated PNG image`,
      `${missing}: cannot read it (ENOENT)`,
    ];
    const lines = text.stderr.trim().split('\n');
    expect(lines).toHaveLength(4);
    errors.forEach((e, i) => expect(lines[i].startsWith(`gradq: error: ${e}`), lines[i]).toBe(true));
    expect(json.code).toBe(2);
    const out = lastJson(json.stdout) as { predictions: Prediction[]; errors: { file: string; error: string }[] };
    expect(out.predictions.map((p) => p.file)).toEqual([good1, good2]);
    expect(out.errors.map((e) => e.file)).toEqual([empty, notes, cut, missing]);
    expect(json.stderr.trim().split('\n')).toEqual(lines);
  });

  it('takes the dataset from the model file, or from --dataset, which overrides it', async () => {
    const file = images('mnist', 0)[0];
    const r = await runCli(['predict', '--model', models.mnist, '--dataset', 'fashion-mnist', '--json', file]);
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r.stdout) as { dataset: string; predictions: Prediction[] };
    expect(out.dataset).toBe('fashion-mnist');
    expect(getDatasetInfo('fashion-mnist').classNames).toContain(out.predictions[0].name);
    // A model file that does not say which dataset it was trained on needs --dataset.
    const bare = join(tmp, 'bare.gradq');
    writeFileSync(bare, encodeModel(new Model('mlp:784-16-10', { seed: 3 })));
    const without = await runCli(['predict', '--model', bare, file]);
    expect(without.code).toBe(2);
    expect(without.stderr).toBe(
      `gradq: error: --model ${bare}: the file does not say which dataset it was trained on; pass --dataset mnist or fashion-mnist\n`,
    );
    const withFlag = await runCli(['predict', '--model', bare, '--dataset', 'mnist', file]);
    expect(withFlag.code, withFlag.stderr).toBe(0);
    expect(withFlag.stdout).toMatch(new RegExp(`^${file}: \\d \\(`));
  });

  it.each<[string, () => string[], RegExp]>([
    ['no image', () => ['--model', models.mnist], /gradq predict: give one or more PNG or JPEG files/],
    ['no --model', () => [images('mnist', 0)[0]], /--model FILE is required/],
    ['a missing model file', () => ['--model', join(tmp, 'nope.gradq'), images('mnist', 0)[0]], /nope\.gradq: cannot read it \(ENOENT\)/],
    [
      'a model that does not fit the images',
      () => ['--model', smallModel(), images('mnist', 0)[0]],
      /--model: model mlp:100-10 takes \[100\] but mnist has 784 inputs/,
    ],
    ['--top 0', () => ['--model', models.mnist, '--top', '0', images('mnist', 0)[0]], /--top 0: must be >= 1/],
  ])('refuses %s: one error line, exit code 2', async (_what, args, pattern) => {
    const r = await runCli(['predict', ...args()]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^gradq: error: /);
    expect(r.stderr).toMatch(pattern);
  });
});

/** A saved mlp:100-10 that says it was trained on MNIST (whose images have 784 pixels). */
function smallModel(): string {
  const file = join(tmp, 'small.gradq');
  writeFileSync(file, encodeModel(new Model('mlp:100-10'), undefined, { dataset: 'mnist' }));
  return file;
}

describe('softmax', () => {
  it('gives probabilities whose -log is the cross-entropy of each label, also for large logits', () => {
    const rng = new Rng(5);
    for (const spread of [1, 30, 300]) {
      const logits = Float32Array.from({ length: 10 }, () => rng.nextNormal() * spread);
      const p = softmax(logits);
      expect(p.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
      for (let c = 0; c < 10; c++) {
        const loss = softmaxCrossEntropy(null, logits, [c], 1, 10).lossSum;
        if (loss < 30) expect(-Math.log(p[c])).toBeCloseTo(loss, 5);
        else expect(p[c]).toBeLessThan(1e-12);
      }
    }
  });
});
