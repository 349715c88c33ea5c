#!/usr/bin/env node
// How long GET θ takes when 1 or 8 workers fetch the same step at once, from a Redis Cluster: θ as one key (one
// master serves every reader) against θ split into one chunk per master (each reader fetches the chunks from all
// masters in parallel). Starts a 3-master cluster of its own (redis-server >= 7 and redis-cli on PATH) on free
// loopback ports, each node with its own --dir in a temporary folder, and kills it by pid at the end. Each reader
// is a worker thread with connections of its own, as gradq workers have (the tensor connection of @gradq/cluster).
//
//   npm run build && node tools/theta-reads.mjs [--bytes 407080] [--reads 60] [--readers 1,8] [--rounds 3]
//
// Prints one line per (layout, readers) and the medians as JSON on the last line.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { ClusterTensorConnection } from '../libs/cluster/dist/index.js';

if (isMainThread) await main();
else await reader(workerData);

async function main() {
  const { values } = parseArgs({
    options: {
      bytes: { type: 'string', default: String(4 * 101_770) }, // θ of mlp:784-128-10, the default model
      reads: { type: 'string', default: '60' },
      readers: { type: 'string', default: '1,8' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const bytes = Number(values.bytes);
  const reads = Number(values.reads);
  const readerCounts = values.readers.split(',').map(Number);
  const rounds = Number(values.rounds);
  const cluster = await startCluster(3);
  try {
    const url = `redis://127.0.0.1:${cluster.ports[0]}`;
    const writer = new ClusterTensorConnection(url);
    const theta = new Uint8Array(bytes).map((_, i) => i * 7);
    // One key (all readers on one master), and one chunk per master: keys whose hash tags land on each master.
    const whole = 'gradq:theta-reads:{whole}:params:1';
    const chunkKeys = await keysOnEveryMaster(writer, cluster.ports);
    const per = Math.ceil(bytes / chunkKeys.length);
    await writer.set(whole, theta, 600_000);
    for (const [i, key] of chunkKeys.entries()) await writer.set(key, theta.subarray(i * per, (i + 1) * per), 600_000);
    const layouts = { 'one node': [whole], [`spread (${chunkKeys.length} chunks)`]: chunkKeys };
    const medians = {};
    // Rounds alternate the layouts, so that both see the same load of the (shared) machine.
    for (let round = 0; round < rounds; round++) {
      for (const readers of readerCounts) {
        for (const [layout, keys] of Object.entries(layouts)) {
          const ms = await measure(url, keys, bytes, readers, reads);
          (medians[`${layout}, ${readers} readers`] ??= []).push(ms);
        }
      }
    }
    const result = {};
    for (const [name, ms] of Object.entries(medians)) {
      const m = median(ms.map((r) => r.median));
      result[name] = { get_ms_median: m, get_ms_p90: median(ms.map((r) => r.p90)), mb_per_s_all_readers: median(ms.map((r) => r.mbps)) };
      console.log(
        `${name.padEnd(32)} GET θ median ${m.toFixed(2)} ms  p90 ${result[name].get_ms_p90.toFixed(2)} ms  ${result[name].mb_per_s_all_readers.toFixed(0)} MB/s in all`,
      );
    }
    await writer.quit();
    console.log(JSON.stringify({ bytes, reads_per_reader: reads, rounds, masters: 3, ...result }));
  } finally {
    await cluster.stop();
  }
}

/** `readers` threads each GET θ (its keys in parallel) `reads` times, all starting together; per-GET times. */
async function measure(url, keys, bytes, readers, reads) {
  const per = Math.ceil(bytes / keys.length);
  const threads = Array.from(
    { length: readers },
    () => new Worker(new URL(import.meta.url), { workerData: { url, keys, per, bytes, reads } }),
  );
  const next = (t) => new Promise((resolve, reject) => (t.once('message', resolve), t.once('error', reject)));
  await Promise.all(threads.map(next)); // connected
  const start = performance.now();
  for (const t of threads) t.postMessage('go');
  const times = (await Promise.all(threads.map(next))).flat();
  const wall = performance.now() - start;
  await Promise.all(threads.map((t) => t.terminate()));
  times.sort((a, b) => a - b);
  return {
    median: times[times.length >> 1],
    p90: times[Math.floor(times.length * 0.9)],
    mbps: (readers * reads * bytes) / 1e6 / (wall / 1000),
  };
}

/** One reader: its own connections, one warm-up GET, then `reads` timed GETs of θ into one buffer. */
async function reader({ url, keys, per, bytes, reads }) {
  const tensors = new ClusterTensorConnection(url);
  const into = new Uint8Array(bytes);
  const fetch = () => Promise.all(keys.map((key, i) => tensors.get(key, () => into.subarray(i * per, Math.min(bytes, (i + 1) * per)))));
  await fetch();
  parentPort.postMessage('ready');
  await new Promise((resolve) => parentPort.once('message', resolve));
  const times = [];
  for (let i = 0; i < reads; i++) {
    const t0 = performance.now();
    const got = await fetch();
    times.push(performance.now() - t0);
    if (got.reduce((n, g) => n + g.length, 0) !== bytes) throw new Error('short read');
  }
  parentPort.postMessage(times);
  await tensors.quit();
}

/** A key for a chunk of θ on each master, in the masters' order. */
async function keysOnEveryMaster(tensors, ports) {
  const keys = [];
  for (const port of ports) {
    for (let tag = 0; ; tag++) {
      const key = `gradq:theta-reads:{c${tag}}:params:1`;
      if ((await tensors.nodeOf(key)) === `127.0.0.1:${port}`) {
        keys.push(key);
        break;
      }
    }
  }
  return keys;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** `masters` redis-servers with --cluster-enabled yes joined by redis-cli --cluster create; stop() kills them by pid. */
async function startCluster(masters) {
  const dir = mkdtempSync(join(tmpdir(), 'gradq-theta-reads-'));
  const ports = [];
  while (ports.length < 2 * masters) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const children = ports.slice(0, masters).map((port, i) => {
    mkdirSync(join(dir, String(port)));
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', join(dir, String(port)), '--save', '', '--appendonly', 'no'];
    args.push('--cluster-enabled', 'yes', '--cluster-port', String(ports[masters + i]));
    return spawn('redis-server', args, { stdio: 'ignore' });
  });
  const stop = async () => {
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => (c.once('exit', r), c.kill('SIGKILL'))))));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const nodes = ports.slice(0, masters).map((p) => `127.0.0.1:${p}`);
    for (let i = 0; ; i++) {
      const ping = nodes.map((n) => spawnSync('redis-cli', ['-p', n.split(':')[1], 'ping'], { encoding: 'utf8' }).stdout.trim());
      if (ping.every((p) => p === 'PONG')) break;
      if (i > 200) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create: ${create.stdout}${create.stderr}`);
    for (let i = 0; ; i++) {
      const info = nodes.map((n) => spawnSync('redis-cli', ['-p', n.split(':')[1], 'cluster', 'info'], { encoding: 'utf8' }).stdout);
      if (info.every((s) => s.includes('cluster_state:ok'))) break;
      if (i > 400) throw new Error('the cluster did not come up');
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { ports: ports.slice(0, masters), stop };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
