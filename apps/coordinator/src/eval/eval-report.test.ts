/// <reference lib="dom" />
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { limitSamples, loadDataset } from '@gradq/data';
import { Model } from '@gradq/nn';
import { evaluateSplit } from '@gradq/train';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../render/chromium.js';
import { SHARED_DATA } from '../testing/run-cli.js';
import { REPORT_FILE, writeEvalReport } from './eval-report.js';

/** Where to write a PNG of the report rendered in Chromium (the README's picture), when set. */
const SCREENSHOT = process.env.GRADQ_REPORT_SCREENSHOT;
const tmp = mkdtempSync(join(tmpdir(), 'gradq-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('writeEvalReport', () => {
  it('writes one page with the heatmap, the bars and the most confidently wrong images, which Chromium renders', async () => {
    const dataset = await loadDataset('fashion-mnist', { dataDir: SHARED_DATA });
    const test = limitSamples(dataset.test, 2000);
    const model = new Model('mlp:784-16-10', { seed: 2 }); // untrained: plenty of mistakes
    const evaluation = evaluateSplit(model, test, { confusion: true, mistakes: 24 });
    const input = {
      dataset: 'fashion-mnist',
      model: model.name,
      modelFile: 'm<1>.gradq',
      classNames: dataset.classNames,
      evaluation,
      test,
    };
    const file = await writeEvalReport(join(tmp, 'r'), input);
    expect(file).toBe(join(tmp, 'r', REPORT_FILE));
    const html = readFileSync(file, 'utf8');
    expect(html.match(/<svg/g)).toHaveLength(2);
    expect(html).not.toMatch(/<script|src="http|href="http/); // self-contained
    expect(html).toContain('m&#60;1&#62;.gradq'); // names are escaped
    // Each image is the test sample's pixels, drawn 4× larger.
    const images = [...html.matchAll(/src="data:image\/png;base64,([^"]+)"/g)].map((m) => PNG.sync.read(Buffer.from(m[1], 'base64')));
    expect(images).toHaveLength(24);
    const first = evaluation.mistakes![0];
    expect([images[0].width, images[0].height]).toEqual([112, 112]);
    for (const [x, y] of [
      [0, 0],
      [13, 14],
      [20, 5],
      [27, 27],
    ]) {
      // prettier-ignore
      expect(images[0].data[4 * ((4 * y + 1) * 112 + 4 * x + 2)]).toBe(test.pixels[first.index * 784 + y * 28 + x]);
    }
    expect(html).toContain(`<b>${dataset.classNames[first.label]}</b> taken for <b>${dataset.classNames[first.predicted]}</b>`);
    // Every cell's count is in the heatmap.
    for (const n of new Set(evaluation.confusion!.flat())) expect(html).toContain(`>${n}</text>`);

    const browser = await launchChromium({ width: 1100, height: 900 });
    try {
      const page = await browser.context.newPage();
      await page.goto(pathToFileURL(file).href);
      expect(
        await page.locator('figure img').evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth === 112).length),
      ).toBe(24);
      const png = await page.screenshot({ fullPage: true, type: 'png', ...(SCREENSHOT ? { path: SCREENSHOT } : {}) });
      expect(PNG.sync.read(png).width).toBe(1100);
    } finally {
      await browser.close();
    }
  });
});
