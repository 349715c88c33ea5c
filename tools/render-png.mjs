// Renders an SVG or HTML file (a gradq bench chart, an eval report) to PNG in Debian's headless Chromium, with the
// function gradq eval --report uses (apps/coordinator/src/render/chromium.ts; built by npm ci), so that a picture
// can be looked at before it is shown.
//   node tools/render-png.mjs bench-results/bench.svg docs/bench.png [SCALE]
import { renderPng } from '../apps/coordinator/dist/render/chromium.js';

const [input, output, scale = '1'] = process.argv.slice(2);
if (!input || !output || !(Number(scale) > 0)) {
  console.error('usage: node tools/render-png.mjs IN.svg|IN.html OUT.png [SCALE>0]');
  process.exit(2);
}
await renderPng(input, output, { scale: Number(scale) });
console.log(`wrote ${output}`);
