import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/**
 * Why a test cannot start a Redis Cluster of its own here, or undefined when it can: redis-server 7 or later
 * (for --cluster-port, which keeps the bus ports free of a clash) and redis-cli with --cluster on PATH.
 */
export const REDIS_CLUSTER_UNSUPPORTED: string | undefined = (() => {
  const server = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (server.status !== 0) return 'redis-server is not on PATH (apt-get install redis-server)';
  const major = Number(/v=(\d+)\./.exec(server.stdout)?.[1] ?? 0);
  if (major < 7) return `redis-server ${server.stdout.trim()} is older than 7: no --cluster-port`;
  const cli = spawnSync('redis-cli', ['--cluster', 'help'], { encoding: 'utf8' });
  if (!/create\s+host1:port1/.test(cli.stdout)) return 'redis-cli with --cluster support is not on PATH (apt-get install redis-tools)';
  return undefined;
})();

/** The title of a Redis Cluster test's describe block: says why it was skipped, when it is. */
export function clusterSuite(title: string): string {
  return REDIS_CLUSTER_UNSUPPORTED === undefined ? title : `${title} (skipped: ${REDIS_CLUSTER_UNSUPPORTED})`;
}

/**
 * A Redis Cluster of a test's own: `masters` redis-servers with --cluster-enabled yes on free loopback ports (never
 * the shared 6379), each with its own --dir in a temporary folder, no persistence, joined with
 * `redis-cli --cluster create … --cluster-replicas 0`; with `password`, every node requires it. Stopped by pid.
 */
export class TestRedisCluster {
  private readonly children: ChildProcess[] = [];

  private constructor(
    readonly ports: number[],
    private readonly dir: string,
    private readonly password: string | undefined,
  ) {}

  static async start(options: { masters?: number; password?: string } = {}): Promise<TestRedisCluster> {
    const masters = options.masters ?? 3;
    const ports: number[] = [];
    while (ports.length < 2 * masters) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    const cluster = new TestRedisCluster(ports.slice(0, masters), mkdtempSync(join(tmpdir(), 'gradq-redis-cluster-')), options.password);
    try {
      await cluster.launch(ports.slice(masters));
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /** The URL of node `node` (any node will do for a cluster client), with `password` (by default none). */
  url(node = 0, password?: string): string {
    return `redis://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}127.0.0.1:${this.ports[node]}`;
  }

  get pids(): number[] {
    return this.children.flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
  }

  /** A plain connection to node `node` (with the cluster's password). */
  node(node: number): Redis {
    return new Redis(this.url(node, this.password), { maxRetriesPerRequest: 1 });
  }

  /** SIGKILLs every node and removes their folder. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.splice(0).map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(busPorts: number[]): Promise<void> {
    const auth = this.password === undefined ? [] : ['--requirepass', this.password, '--masterauth', this.password];
    this.ports.forEach((port, i) => {
      const dir = join(this.dir, String(port));
      mkdirSync(dir); // a folder of this node's own (nodes.conf)
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', `${dir}`, '--save', '', '--appendonly', 'no'];
      args.push('--cluster-enabled', 'yes', '--cluster-port', String(busPorts[i]), '--cluster-config-file', 'nodes.conf', ...auth);
      this.children.push(spawn('redis-server', args, { stdio: 'ignore' }));
    });
    for (let i = 0; i < this.ports.length; i++) await this.waitFor(i, async (r) => (await r.ping()) === 'PONG');
    const nodes = this.ports.map((p) => `127.0.0.1:${p}`);
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes,
        '--cluster-replicas',
        '0',
        '--cluster-yes',
        ...(this.password === undefined ? [] : ['-a', this.password]),
      ],
      { encoding: 'utf8', env: { ...process.env, REDISCLI_AUTH: this.password ?? '' }, timeout: 60_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed (${create.status}): ${create.stdout}${create.stderr}`);
    for (let i = 0; i < this.ports.length; i++) {
      await this.waitFor(i, async (r) => /cluster_state:ok/.test(String(await r.call('CLUSTER', 'INFO'))));
    }
  }

  /** Polls node `i` until `ok` holds (for up to ~20 s). */
  private async waitFor(i: number, ok: (redis: Redis) => Promise<boolean>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const child = this.children[i];
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.ports[i]} exited with code ${child.exitCode}`);
      const redis = new Redis(this.url(i, this.password), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        if (await ok(redis)) return;
      } catch (e) {
        if (attempt >= 400) throw e;
      } finally {
        redis.disconnect();
      }
      if (attempt >= 400) throw new Error(`Redis Cluster node on port ${this.ports[i]} not ready after 20 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
