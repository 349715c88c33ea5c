import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseFlags, type FlagSpecs, type ParsedFlags } from '@gradq/cli';
import { DEFAULT_REDIS_URL, QUEUE_PREFIX, WORKER_FLAGS } from '@gradq/cluster';
import { Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COMMANDS } from './index.js';
import { WORKER_NODE_FLAGS } from './cluster/local-workers.js';

// What can break in the container setup (Dockerfile, docker-compose.yml) without a Docker engine (the real engine
// runs them in compose-engine.test.ts, where one can be started): that compose's commands parse with the real `gradq` flag parser, that the
// services fit together (scalable workers, Redis health, shared data volume) and that the worker healthcheck
// really detects a BullMQ worker.

const root = new URL('../../../', import.meta.url);
const composeText = readFileSync(new URL('docker-compose.yml', root), 'utf8');

/** docker-compose.yml with `${NAME:-default}` interpolated as compose does, from `vars` (none set: the defaults). */
function composeWith(vars: Record<string, string>): ComposeFile {
  const text = composeText.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (whole, name: string, fallback?: string) => {
    const value = vars[name] || fallback;
    if (value === undefined) throw new Error(`docker-compose.yml: ${whole} has no default (compose would leave it empty)`);
    return value;
  });
  return parse(text) as ComposeFile;
}
const compose = composeWith({});
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: unknown;
  container_name?: string;
  ports?: unknown[];
  environment?: Record<string, string> | string[];
  volumes?: unknown[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: unknown };
  stop_grace_period?: string;
}
interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const service = (name: string, file: ComposeFile = compose): ComposeService => {
  const s = file.services?.[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
};

/** The flags of a `gradq` command: the coordinator's commands, and `worker` (the bin adds the worker app's command, whose flags are WORKER_FLAGS). */
function flagsOf(command: string): FlagSpecs | undefined {
  if (command === 'worker') return COMMANDS.worker?.flags ?? WORKER_FLAGS;
  return Object.hasOwn(COMMANDS, command) ? COMMANDS[command].flags : undefined;
}

/** A service's `command`, which must be the exec (array) form `[gradq-command, ...flags]`, parsed like `gradq` does. */
function gradqCommand(name: string, file: ComposeFile = compose): { command: string; args: string[]; flags: ParsedFlags } {
  const raw = service(name, file).command;
  if (!Array.isArray(raw)) throw new Error(`${name}: command must be a YAML sequence (exec form), got ${JSON.stringify(raw)}`);
  // Numbers must be quoted: compose would accept 12, but only strings reach the program unchanged.
  for (const a of raw) if (typeof a !== 'string') throw new Error(`${name}: command element ${JSON.stringify(a)} is not a string`);
  const [command, ...args] = raw as string[];
  const specs = flagsOf(command);
  if (!specs) throw new Error(`${name}: "${command}" is not a gradq command (have ${[...Object.keys(COMMANDS), 'worker'].join(', ')})`);
  return { command, args, flags: parseFlags(command, args, specs) };
}

/** `KEY: value` or `KEY=value` from a service's environment. */
function envOf(s: ComposeService, key: string): string | undefined {
  const env = s.environment;
  if (Array.isArray(env)) return env.find((e) => e.startsWith(`${key}=`))?.slice(key.length + 1);
  return env?.[key];
}

/** Short-syntax volume mounts `source:target[:mode]` as { source, target }. */
function mounts(s: ComposeService): { source: string; target: string; readOnly: boolean }[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') throw new Error(`use the short volume syntax, got ${JSON.stringify(v)}`);
    const [source, target, mode] = v.split(':');
    return { source, target, readOnly: mode === 'ro' };
  });
}

/** The Dockerfile's instructions of the final stage, continuation lines joined. */
function finalStage(): { keyword: string; rest: string }[] {
  const lines = dockerfile.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const instructions = lines
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(l) ?? [];
      return { keyword: keyword.toUpperCase(), rest };
    });
  const lastFrom = instructions.map((i) => i.keyword).lastIndexOf('FROM');
  return instructions.slice(lastFrom);
}

/** Seconds of a compose duration such as `30s`, `1m30s`. */
function seconds(duration: string): number {
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(h|m|s|ms|us)/g)];
  expect(parts.map((p) => p[0]).join(''), `duration ${duration}`).toBe(duration);
  const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6 } as const;
  return parts.reduce((sum, [, n, u]) => sum + Number(n) * unit[u as keyof typeof unit], 0);
}

describe('docker-compose.yml', () => {
  it('has nothing Compose v1.29 rejects: no top-level name (the project name comes from .env)', () => {
    expect(compose).not.toHaveProperty('name');
    expect(readFileSync(new URL('.env', root), 'utf8')).toMatch(/^COMPOSE_PROJECT_NAME=gradq$/m);
  });

  it.each<Record<string, string>>([{}, { GRADQ_REDIS_PORT: '6390' }])(
    'probes Redis on the port its command gives, which the others use (%j)',
    (vars) => {
      const file = composeWith(vars);
      const command = service('redis', file).command as string[];
      const port = command[command.indexOf('--port') + 1];
      expect(command, 'redis-server --port').toContain('--port');
      expect(port).toBe(vars.GRADQ_REDIS_PORT ?? '6379');
      const probe = (service('redis', file).healthcheck?.test as string[]).join(' ');
      expect(probe).toMatch(new RegExp(`redis-cli -p ${port} ping`));
      for (const name of ['coordinator', 'worker']) expect(gradqCommand(name, file).flags.redis).toBe(`redis://redis:${port}`);
      expect((service('worker', file).healthcheck?.test as string[])[4]).toBe(`redis://redis:${port}`);
    },
  );

  it('gives the coordinator time for its final checkpoint when stopped (SIGTERM), as the workers to hand back a shard', () => {
    for (const name of ['coordinator', 'worker']) {
      expect(service(name).stop_grace_period, `${name}.stop_grace_period`).toBeDefined();
      expect(seconds(service(name).stop_grace_period ?? '')).toBeGreaterThanOrEqual(30);
    }
  });

  it('has redis, coordinator and worker, and the worker can be scaled', () => {
    for (const name of ['redis', 'coordinator', 'worker']) expect(compose.services).toHaveProperty(name);
    expect(service('worker').container_name, 'a container_name would make --scale worker=N fail').toBeUndefined();
    expect(service('worker').ports, 'host ports would make --scale worker=N fail').toBeUndefined();
  });

  it('starts the coordinator and the workers once Redis is healthy', () => {
    expect(service('redis').healthcheck?.test).toBeDefined();
    for (const name of ['coordinator', 'worker']) {
      const deps = service(name).depends_on;
      if (deps === undefined || Array.isArray(deps)) {
        throw new Error(`${name}: depends_on must wait for redis to be healthy (redis: { condition: service_healthy })`);
      }
      expect(deps.redis?.condition, `${name}.depends_on.redis`).toBe('service_healthy');
    }
  });

  it('builds coordinator and worker from the one image of ./Dockerfile', () => {
    expect(service('coordinator').build).toBe('.');
    expect(service('worker').build).toBe('.');
    expect(service('worker').image).toBe(service('coordinator').image);
  });

  it('runs `gradq train --workers 0` in the coordinator: real flags, no in-process workers', () => {
    const { command, args, flags } = gradqCommand('coordinator');
    expect(command).toBe('train');
    expect(args.join(' ')).toMatch(/(^| )--workers(=| )0( |$)/);
    expect(flags.workers).toBe(0);
    expect(flags.shm, 'its workers are other containers, with a /dev/shm of their own').toBe('off');
    expect(flags.local).not.toBe(true);
    expect(flags.redis).toBe('redis://redis:6379');
  });

  it('serves the dashboard from the coordinator on a port published on the host’s loopback only', () => {
    const { flags } = gradqCommand('coordinator');
    const [host, port] = String(flags.dashboard).split(':');
    expect(host).toBe('0.0.0.0'); // inside the container: reachable through the published port
    expect(service('coordinator').ports).toEqual([`127.0.0.1:${port}:${port}`]);
  });

  it('runs `gradq worker` in the workers, on the coordinator’s Redis and queue', () => {
    const coordinator = gradqCommand('coordinator').flags;
    const { command, flags } = gradqCommand('worker');
    expect(command).toBe('worker');
    expect(flags.redis).toBe(coordinator.redis);
    expect(flags.queue).toBe(coordinator.queue);
  });

  it('gives the workers the Node flags local workers get', () => {
    const options = envOf(service('worker'), 'NODE_OPTIONS')?.split(/\s+/) ?? [];
    for (const flag of WORKER_NODE_FLAGS) expect(options, 'worker NODE_OPTIONS').toContain(flag);
  });

  it('shares one dataset cache: GRADQ_DATA_DIR=/data on the `data` volume, no --data-dir', () => {
    expect(compose.volumes).toHaveProperty('data');
    const imageEnv = finalStage().some((i) => i.keyword === 'ENV' && /(^|\s)GRADQ_DATA_DIR=\/data(\s|$)/.test(i.rest));
    for (const name of ['coordinator', 'worker']) {
      // --data-dir never downloads: with a fresh volume the run would stop at once.
      expect(gradqCommand(name).flags['data-dir'], `${name} passes --data-dir`).toBeUndefined();
      expect(envOf(service(name), 'GRADQ_DATA_DIR') ?? (imageEnv ? '/data' : undefined), `${name}: GRADQ_DATA_DIR`).toBe('/data');
      expect(mounts(service(name))).toContainEqual({ source: 'data', target: '/data', readOnly: false });
    }
  });

  it('writes the checkpoints and the model into a volume', () => {
    const { flags } = gradqCommand('coordinator');
    const targets = mounts(service('coordinator'))
      .filter((m) => !m.readOnly)
      .map((m) => m.target);
    for (const key of ['out', 'checkpoint']) {
      const path = flags[key];
      expect(typeof path, `--${key}`).toBe('string');
      expect(
        targets.some((t) => (path as string).startsWith(`${t}/`)),
        `--${key} ${String(path)} is not on a volume`,
      ).toBe(true);
    }
  });
});

describe('the worker healthcheck', () => {
  const healthcheck = service('worker').healthcheck?.test;

  it('is `node -e SCRIPT REDIS_URL QUEUE` with the worker’s own --redis and --queue', () => {
    expect(Array.isArray(healthcheck)).toBe(true);
    const [kind, node, e, , url, queue] = healthcheck as string[];
    expect([kind, node, e]).toEqual(['CMD', 'node', '-e']);
    const { flags } = gradqCommand('worker');
    expect(url).toBe(flags.redis);
    expect(queue).toBe(flags.queue);
  });

  it('fails without a BullMQ worker for the queue and passes with one', async () => {
    const script = (healthcheck as string[])[3];
    const queue = `compose-healthcheck-${process.pid}-${Date.now()}`;
    // cwd = repository root, like /app in the image: `require('ioredis')` resolves from node_modules there.
    const check = () =>
      spawnSync(process.execPath, ['-e', script, DEFAULT_REDIS_URL, queue], {
        cwd: fileURLToPath(root),
        encoding: 'utf8',
        timeout: 15_000,
      });

    const before = check();
    expect(before.status, before.stderr).toBe(1);
    expect(before.stderr).toContain('no BullMQ worker connection');

    const worker = new Worker(queue, async () => undefined, { connection: { url: DEFAULT_REDIS_URL }, prefix: QUEUE_PREFIX });
    try {
      await worker.waitUntilReady();
      let during = check();
      // The worker names its blocking connection just after it is ready.
      for (let i = 0; i < 25 && during.status !== 0; i++) {
        await new Promise((r) => setTimeout(r, 200));
        during = check();
      }
      expect(during.status, during.stderr).toBe(0);
    } finally {
      await worker.close();
    }
    const after = check();
    expect(after.status, after.stderr).toBe(1);
  });
});

describe('Dockerfile', () => {
  const stage = finalStage();

  it('runs the gradq bin as the entrypoint', () => {
    const entrypoint = stage.filter((i) => i.keyword === 'ENTRYPOINT').at(-1)?.rest ?? 'null';
    expect(JSON.parse(entrypoint), "the final stage's ENTRYPOINT, exec form").toEqual(['node', 'apps/coordinator/bin/gradq.js']);
    expect(existsSync(new URL('apps/coordinator/bin/gradq.js', root))).toBe(true);
  });

  it('runs as a non-root user with the dataset cache on /data', () => {
    const user = stage.filter((i) => i.keyword === 'USER').at(-1)?.rest ?? 'root';
    expect(['root', '0'], `USER ${user}`).not.toContain(user.split(':')[0]);
    expect(stage.some((i) => i.keyword === 'ENV' && /(^|\s)GRADQ_DATA_DIR=\/data(\s|$)/.test(i.rest))).toBe(true);
  });

  it('builds without BuildKit (engines before 23, clients without buildx): no RUN --mount', () => {
    expect(dockerfile).not.toMatch(/^\s*RUN\s+--mount/m);
  });

  it('keeps host builds and run outputs out of the build context', () => {
    const ignored = readFileSync(new URL('.dockerignore', root), 'utf8')
      .split(/\r?\n/)
      .map((l) => l.trim());
    for (const pattern of ['**/node_modules', '**/dist', '.git', '.nx', 'runs', '**/*.gradq']) expect(ignored).toContain(pattern);
  });
});
