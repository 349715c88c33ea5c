import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

export { TestRedisCluster, REDIS_CLUSTER_UNSUPPORTED, clusterSuite } from './redis-cluster.js';

/** True when tests can start a redis-server of their own (it is on PATH). */
export const REDIS_SERVER_ON_PATH = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * A redis-server of a test's own on a free loopback port (never the shared 6379), without persistence, so that a
 * test may kill it, start it again empty on the same port, or give it a password. Stopped by its pid.
 */
export class TestRedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly password: string | undefined,
  ) {}

  /** Starts one and waits until it answers. */
  static async start(options: { password?: string } = {}): Promise<TestRedisServer> {
    const server = new TestRedisServer(await freePort(), options.password);
    await server.launch();
    return server;
  }

  /** Its URL, with `password` (by default none, whatever the server needs). */
  url(password?: string): string {
    return `redis://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** SIGKILL, and wait until it is gone: everything it held is lost. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts it again, empty, on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  private async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (this.password !== undefined) args.push('--requirepass', this.password);
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.child = child;
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with code ${child.exitCode}`);
      const redis = new Redis(this.url(this.password), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        if ((await redis.ping()) === 'PONG') return;
      } catch (e) {
        if (i >= 100) throw e;
      } finally {
        redis.disconnect();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
