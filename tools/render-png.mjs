// Renders an SVG or HTML file (a gradq bench chart, an eval report) to PNG in Debian's headless Chromium, the
// way the dashboard's browser test takes its screenshots, so that a picture can be looked at before it is shown.
//   node tools/render-png.mjs bench-results/bench.svg docs/bench.png [SCALE]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [input, output, scale = '1'] = process.argv.slice(2);
if (!input || !output || !(Number(scale) > 0)) {
  console.error('usage: node tools/render-png.mjs IN.svg|IN.html OUT.png [SCALE>0]');
  process.exit(2);
}
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
]; // prettier-ignore
const profile = mkdtempSync(join(tmpdir(), 'gradq-render-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.GRADQ_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: FLAGS,
  deviceScaleFactor: Number(scale),
  viewport: { width: 800, height: 600 },
});
try {
  const page = await context.newPage();
  await page.goto(pathToFileURL(resolve(input)).href);
  // An SVG: exactly its own size; a page: the whole page.
  const svg = await page.$('svg:root');
  if (svg) await svg.screenshot({ path: output, type: 'png' });
  else await page.screenshot({ path: output, type: 'png', fullPage: true });
  console.log(`wrote ${output}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
