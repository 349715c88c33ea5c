// The gradq dashboard page: reads the run's snapshot and deltas from /api/events (server-sent events) and draws
// them with uPlot. Every text from the server goes in through textContent (worker names come from outside).
/* global uPlot */
'use strict';

const state = { info: null, status: 'connecting', steps: [], epochs: [], workers: [], counters: null, now: Date.now(), skew: 0 };
const COLORS = {
  raw: '#9db7e8',
  smooth: '#2f6fde',
  train: '#9bd3ae',
  trainSmooth: '#1f9d55',
  test: '#d9822b',
  rate: '#2f6fde',
  lr: '#8e44ad',
};
const PHASES = [
  ['publishMs', 'publish', '#8e44ad'],
  ['queueWaitMs', 'queue wait', '#d64545'],
  ['fetchMs', 'fetch', '#d9822b'],
  ['computeMs', 'compute', '#2f6fde'],
  ['uploadMs', 'upload', '#16a2b8'],
  ['aggregateMs', 'aggregate', '#6b7385'],
  ['optimizerMs', 'optimizer', '#1f9d55'],
];
const $ = (id) => document.getElementById(id);

/** An exponential moving average with bias correction (as TensorBoard's smoothing), skipping nulls. */
function smooth(values, weight) {
  const out = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

function fmt(x, digits) {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}
function pct(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : (100 * x).toFixed(2) + '%';
}
function count(x) {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–';
}
function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return (h > 0 ? h + 'h ' : '') + (h > 0 || m > 0 ? m + 'm ' : '') + (s % 60) + 's';
}

const charts = {};
function makeChart(id, series, axes, opts) {
  const el = $(id);
  const width = Math.max(200, el.clientWidth);
  const data = [[]].concat(series.map(() => []));
  const chart = new uPlot(
    Object.assign(
      {
        width,
        height: 240,
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: false } },
        series: [{ label: 'step' }].concat(series),
        axes: [{ label: 'step', labelSize: 18, size: 38 }].concat(axes),
      },
      opts || {},
    ),
    data,
    el,
  );
  new ResizeObserver(() => chart.setSize({ width: Math.max(200, el.clientWidth), height: 240 })).observe(el);
  charts[id] = chart;
  return chart;
}

function setUpCharts() {
  const line = (label, stroke, extra) => Object.assign({ label, stroke, width: 1.5, points: { show: false } }, extra || {});
  makeChart(
    'chart-loss',
    [
      line('loss', COLORS.raw, { width: 1 }),
      line('smoothed', COLORS.smooth, { width: 2 }),
      line('test loss (epoch)', COLORS.test, { width: 2, points: { show: true, size: 7 }, spanGaps: true }),
    ],
    [{ label: 'cross-entropy', labelSize: 18, size: 52 }],
  );
  makeChart(
    'chart-acc',
    [
      line('train (step)', COLORS.train, { width: 1 }),
      line('train smoothed', COLORS.trainSmooth, { width: 2 }),
      line('test (epoch)', COLORS.test, { width: 2, points: { show: true, size: 7 }, spanGaps: true }),
    ],
    [{ label: 'accuracy %', labelSize: 18, size: 52 }],
  );
  makeChart(
    'chart-phases',
    PHASES.map(([, label, color]) => line(label, color, { width: 1.5 })),
    [{ label: 'ms per step', labelSize: 18, size: 52 }],
  );
  makeChart(
    'chart-rate',
    [line('samples/s', COLORS.rate, { width: 2, scale: 'rate' }), line('learning rate', COLORS.lr, { width: 2, scale: 'lr' })],
    [
      { label: 'samples/s', labelSize: 18, size: 62, scale: 'rate' },
      {
        label: 'learning rate',
        labelSize: 18,
        size: 70,
        scale: 'lr',
        side: 1,
        grid: { show: false },
        values: (u, vals) => vals.map((v) => v.toExponential(3)),
      },
    ],
    { scales: { x: { time: false }, rate: { auto: true }, lr: { auto: true } } },
  );
}

/** The columns of the charts from the rows; test points sit at the step after their epoch's last. */
function redraw() {
  const steps = state.steps;
  const x = steps.map((r) => r.step + 1);
  const loss = steps.map((r) => r.loss);
  const acc = steps.map((r) => 100 * r.accuracy);
  const testLoss = new Array(x.length).fill(null);
  const testAcc = new Array(x.length).fill(null);
  const index = new Map(x.map((s, i) => [s, i]));
  for (const e of state.epochs) {
    const i = index.get(e.step);
    if (i !== undefined) {
      testLoss[i] = e.testLoss;
      testAcc[i] = 100 * e.testAccuracy;
    }
  }
  charts['chart-loss'].setData([x, loss, smooth(loss, 0.9), testLoss]);
  charts['chart-acc'].setData([x, acc, smooth(acc, 0.9), testAcc]);
  // The first step waits for the workers to start and load the data: left out, it would flatten the rest.
  const timed = steps.length > 1 ? steps.slice(1) : steps;
  const local = state.info && state.info.mode === 'local';
  const phaseColumns = PHASES.map(([key]) =>
    smooth(
      timed.map((r) => (key === 'computeMs' && local ? r.ms - r.optimizerMs : r[key] === undefined ? null : r[key])),
      0.9,
    ),
  );
  charts['chart-phases'].setData([timed.map((r) => r.step + 1)].concat(phaseColumns));
  const rate = smooth(
    steps.map((r) => (r.ms > 0 ? (1000 * r.samples) / r.ms : null)),
    0.95,
  );
  charts['chart-rate'].setData([x, rate, steps.map((r) => r.lr)]);
}

function text(el, value) {
  el.textContent = value;
}

function renderProgress() {
  const info = state.info;
  const steps = state.steps;
  const last = steps[steps.length - 1];
  const total = info ? info.totalSteps : 0;
  const done = last ? last.step + 1 : 0;
  const badge = $('status');
  badge.className = 'badge ' + state.status;
  text(badge, state.status);
  $('bar-fill').style.width = total > 0 ? ((100 * done) / total).toFixed(2) + '%' : '0';
  text($('p-step'), total ? count(done) + ' / ' + count(total) : '–');
  const epochs = info && info.config.epochs;
  text($('p-epoch'), last ? last.epoch + 1 + (epochs ? ' / ' + epochs : '') : '–');
  const recent = steps.slice(-50);
  const ms = recent.reduce((a, r) => a + r.ms, 0);
  const samples = recent.reduce((a, r) => a + r.samples, 0);
  text(
    $('p-loss'),
    last
      ? fmt(
          smooth(
            steps.slice(-200).map((r) => r.loss),
            0.95,
          ).pop(),
          4,
        )
      : '–',
  );
  const test = state.epochs[state.epochs.length - 1];
  text($('p-test'), test ? pct(test.testAccuracy) : '–');
  text($('p-rate'), ms > 0 ? count((1000 * samples) / ms) : '–');
  text($('p-lr'), last ? last.lr.toExponential(2) : '–');
  if (steps.length > 0) text($('p-elapsed'), duration(last.time - steps[0].time + steps[0].ms));
  text($('p-eta'), state.status !== 'running' ? '–' : recent.length > 1 ? duration(((total - done) * ms) / recent.length) : '–');
}

function cell(row, value, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  td.textContent = value;
  row.appendChild(td);
  return td;
}

function renderWorkers() {
  const local = state.info && state.info.mode === 'local';
  $('no-workers').hidden = !local;
  $('workers').hidden = local;
  $('counters-card').hidden = local;
  $('queues-link').hidden = local || (state.info && state.info.replay);
  const body = $('workers').tBodies[0];
  body.replaceChildren();
  for (const w of state.workers) {
    const tr = document.createElement('tr');
    tr.dataset.worker = w.name;
    cell(tr, w.name);
    cell(tr, w.host || '–');
    cell(tr, count(w.shards), 'num');
    cell(tr, fmt(w.meanComputeMs, 2), 'num');
    cell(tr, w.lastSeen > 0 ? ((state.now - w.lastSeen) / 1000).toFixed(1) + ' s ago' : 'never', 'num');
    const badge = document.createElement('span');
    badge.className = 'badge ' + w.state;
    badge.textContent = w.state;
    cell(tr, '').appendChild(badge);
    body.appendChild(tr);
  }
  const c = state.counters;
  for (const k of ['duplicates', 'rejected', 'recomputed', 'failed', 'late']) text($('c-' + k), c ? count(c[k]) : '–');
}

function renderEpochs() {
  const body = $('epochs').tBodies[0];
  body.replaceChildren();
  for (const e of state.epochs) {
    const tr = document.createElement('tr');
    cell(tr, String(e.epoch + 1), 'num');
    cell(tr, fmt(e.trainLoss, 4), 'num');
    cell(tr, pct(e.trainAccuracy), 'num');
    cell(tr, fmt(e.testLoss, 4), 'num');
    cell(tr, pct(e.testAccuracy), 'num');
    cell(tr, count(e.samplesPerS), 'num');
    body.appendChild(tr);
  }
  const scroller = body.closest('.scroll');
  if (scroller) scroller.scrollTop = scroller.scrollHeight;
}

function renderConfig() {
  const info = state.info;
  if (!info) return;
  text($('mode'), (info.mode === 'local' ? 'in-process run (--local)' : 'cluster run') + (info.replay ? ', read from its --log-dir' : ''));
  // An in-process step has no cluster phases: only its gradients (as compute) and the optimizer.
  if (info.mode === 'local')
    PHASES.forEach(([key], i) => key !== 'computeMs' && key !== 'optimizerMs' && charts['chart-phases'].setSeries(i + 1, { show: false }));
  const list = $('config');
  list.replaceChildren();
  for (const [k, v] of Object.entries(info.config)) {
    const item = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = v === null ? '–' : String(v);
    item.append(dt, dd);
    list.appendChild(item);
  }
}

let scheduled = false;
function render(full) {
  if (full) renderConfig();
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    redraw();
    renderProgress();
    renderWorkers();
    renderEpochs();
    document.body.dataset.steps = String(state.steps.length);
    document.body.dataset.epochs = String(state.epochs.length);
  });
}

function connect() {
  const events = new EventSource('/api/events');
  events.addEventListener('snapshot', (ev) => {
    const s = JSON.parse(ev.data);
    Object.assign(state, s);
    render(true);
  });
  events.addEventListener('delta', (ev) => {
    const d = JSON.parse(ev.data);
    for (const r of d.steps) state.steps.push(r);
    for (const e of d.epochs) state.epochs.push(e);
    state.status = d.status;
    state.workers = d.workers;
    state.counters = d.counters;
    state.now = d.now;
    render(false);
  });
  events.onerror = () => {
    if (state.status === 'running' || state.status === 'connecting') {
      $('status').className = 'badge';
      text($('status'), state.status === 'connecting' ? 'connecting' : 'disconnected');
    }
  };
}

fetch('/api/run')
  .then((r) => r.json())
  .then((run) => {
    $('report-link').hidden = !run.report;
  })
  .catch(() => undefined);
setUpCharts();
connect();
