import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '@gradq/cli';
import type { Split } from '@gradq/data';
import type { Evaluation } from '@gradq/train';
import { PNG } from 'pngjs';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** The report's page in DIR. */
export const REPORT_FILE = 'index.html';
/** The page rendered in Chromium (gradq eval --report), REPORT_WIDTH CSS pixels wide. */
export const REPORT_PNG = 'report.png';
export const REPORT_WIDTH = 1100;
/** Most confidently wrong test images shown. */
export const REPORT_MISTAKES = 24;
/** Each 28×28 image drawn this many times larger (as whole pixels: no smoothing). */
const PIXEL_SCALE = 4;

export interface ReportInput {
  dataset: string;
  model: string;
  modelFile: string;
  classNames: readonly string[];
  evaluation: Evaluation;
  test: Split;
}

/**
 * Writes DIR/index.html: one self-contained page (no script, no file beside it) with the confusion matrix as a
 * heatmap and per-class accuracy as bars (Vega-Lite, rendered to SVG headless by Vega), and the most confidently
 * wrong test images (PNG data URIs, each pixel drawn large) with their true and predicted classes.
 */
export async function writeEvalReport(dir: string, r: ReportInput): Promise<string> {
  const confusion = r.evaluation.confusion;
  if (!confusion) throw new Error('the evaluation has no confusion matrix');
  const heatmap = await renderSvg(confusionSpec(r.classNames, confusion));
  const bars = await renderSvg(accuracySpec(r.classNames, confusion));
  const gallery = (r.evaluation.mistakes ?? []).map((m) => {
    const src = `data:image/png;base64,${samplePng(r.test, m.index).toString('base64')}`;
    const caption = `#${m.index}: ${r.classNames[m.label]} → ${r.classNames[m.predicted]} ${(100 * m.probability).toFixed(1)}%`;
    return (
      `<figure><img src="${src}" width="${r.test.cols * PIXEL_SCALE}" height="${r.test.rows * PIXEL_SCALE}" alt="${escapeHtml(caption)}">` +
      `<figcaption><b>${escapeHtml(r.classNames[m.label])}</b> taken for <b>${escapeHtml(r.classNames[m.predicted])}</b>` +
      `<br>${(100 * m.probability).toFixed(1)}% · #${m.index}</figcaption></figure>`
    );
  });
  const e = r.evaluation;
  const title = `${r.model} on ${r.dataset}: ${(100 * e.accuracy).toFixed(2)}% test accuracy`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.2rem; color: #1d2330; background: #f5f6f8; }
h1 { font-size: 1.3rem; margin: 0 0 .3rem; } h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
.muted { color: #6b7385; } section { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: .8rem; margin: .8rem 0; overflow-x: auto; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(${r.test.cols * PIXEL_SCALE + 24}px, 1fr)); gap: .8rem; }
figure { margin: 0; text-align: center; font-size: .8rem; } img { image-rendering: pixelated; border: 1px solid #e2e5ea; background: #000; }
</style></head><body>
<h1>${escapeHtml(title)}</h1>
<p class="muted">${escapeHtml(r.modelFile)} · ${e.count} test images · loss ${e.loss.toFixed(4)} · ${e.count - e.correct} wrong</p>
<section class="charts"><div><h2>Confusion matrix</h2>${heatmap}</div><div><h2>Accuracy per class</h2>${bars}</div></section>
<section><h2>The ${gallery.length} most confidently wrong test images</h2><div class="gallery">${gallery.join('\n')}</div></section>
</body></html>
`;
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`--report ${dir}: cannot create it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const file = join(dir, REPORT_FILE);
  writeFileSync(file, html);
  return file;
}

/** confusion[label][predicted] as a heatmap: counts in the cells, the colour on a log-like (sqrt) scale. */
function confusionSpec(names: readonly string[], confusion: number[][]): TopLevelSpec {
  const values = confusion.flatMap((row, label) => row.map((n, predicted) => ({ label: names[label], predicted: names[predicted], n })));
  const order = [...names];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    width: 36 * names.length,
    height: 36 * names.length,
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: order, title: 'predicted class', axis: { labelAngle: -40 } },
      y: { field: 'label', type: 'nominal', sort: order, title: 'true class' },
    },
    layer: [
      {
        mark: 'rect',
        encoding: { color: { field: 'n', type: 'quantitative', title: 'images', scale: { type: 'sqrt', scheme: 'blues' } } },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'n', type: 'quantitative' },
          color: { condition: { test: `datum.n > ${Math.max(...confusion.flat()) / 3}`, value: 'white' }, value: '#1d2330' },
        },
      },
    ],
  } as TopLevelSpec;
}

function accuracySpec(names: readonly string[], confusion: number[][]): TopLevelSpec {
  const values = confusion.map((row, k) => ({
    class: names[k],
    accuracy:
      row[k] /
      Math.max(
        1,
        row.reduce((a, b) => a + b, 0),
      ),
  }));
  const low = Math.max(0, Math.floor(10 * Math.min(...values.map((v) => v.accuracy))) / 10 - 0.1);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    width: 300,
    height: 26 * names.length,
    encoding: {
      y: { field: 'class', type: 'nominal', sort: [...names], title: null },
      x: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', scale: { domain: [low, 1] }, axis: { format: '.0%' } },
    },
    layer: [
      { mark: { type: 'bar', color: '#2f6fde', clip: true } },
      { mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 }, encoding: { text: { field: 'accuracy', format: '.1%' } } },
    ],
  } as TopLevelSpec;
}

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Test image `index` as a gray PNG, each pixel PIXEL_SCALE × PIXEL_SCALE. */
function samplePng(split: Split, index: number): Buffer {
  const { rows, cols } = split;
  const width = cols * PIXEL_SCALE;
  const png = new PNG({ width, height: rows * PIXEL_SCALE });
  for (let y = 0; y < rows * PIXEL_SCALE; y++) {
    for (let x = 0; x < width; x++) {
      const v = split.pixels[index * split.features + Math.floor(y / PIXEL_SCALE) * cols + Math.floor(x / PIXEL_SCALE)];
      const at = 4 * (y * width + x);
      png.data[at] = png.data[at + 1] = png.data[at + 2] = v;
      png.data[at + 3] = 255;
    }
  }
  return PNG.sync.write(png, { colorType: 0 }); // gray: a third of the bytes
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
