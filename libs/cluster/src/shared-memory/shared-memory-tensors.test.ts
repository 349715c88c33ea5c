import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidMessageError } from '../invalid-message-error.js';
import { SkippedBulk } from '../resp-reply-parser.js';
import type { TensorStore } from '../tensor-connection.js';
import { SHM_BASE, SharedMemoryDir } from './shm-dir.js';
import { decodePointer } from './shm-pointer.js';
import { SHM_UNREACHABLE, SharedMemoryTensors, SharedMemoryUnreachableError } from './shared-memory-tensors.js';

/** Redis as a map of strings and lists, read the way TensorConnection reads (into the caller's buffer). */
class FakeStore implements TensorStore {
  readonly values = new Map<string, Uint8Array>();
  readonly lists = new Map<string, Uint8Array[]>();

  async set(key: string, bytes: Uint8Array): Promise<void> {
    this.values.set(key, Uint8Array.from(bytes));
  }
  async unlink(key: string): Promise<void> {
    this.values.delete(key);
  }
  async get(key: string, into: (length: number) => Uint8Array | 'skip') {
    const v = this.values.get(key);
    return v === undefined ? null : FakeStore.deliver(v, into);
  }
  async rpushExpire(key: string, bytes: Uint8Array): Promise<void> {
    this.lists.set(key, [...(this.lists.get(key) ?? []), Uint8Array.from(bytes)]);
  }
  async blpop(key: string, _timeoutS: number, into: (length: number) => Uint8Array | 'skip') {
    const v = this.lists.get(key)?.shift();
    return v === undefined ? null : FakeStore.deliver(v, into);
  }
  readonly ordered = true;
  async announce(): Promise<void> {
    throw new Error('not used here');
  }
  async awaitAnnounce(): Promise<null> {
    return null;
  }
  async quit(): Promise<void> {
    // nothing to close
  }
  disconnect(): void {
    // nothing to close
  }

  private static deliver(v: Uint8Array, into: (length: number) => Uint8Array | 'skip') {
    const target = into(v.byteLength);
    if (target === 'skip') return new SkippedBulk(v.byteLength);
    target.set(v);
    return target.subarray(0, v.byteLength);
  }
}

const canShare = existsSync(SHM_BASE);

/** `v`, which the test has just made sure exists. */
function defined<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`${what} is missing`);
  return v;
}
const pointerIn = (v: Uint8Array | undefined) => defined(decodePointer(defined(v, 'the value')), 'the pointer');
const dirs: SharedMemoryDir[] = [];
const MIN = 1024;

function pair(): { redis: FakeStore; coordinator: SharedMemoryTensors; worker: SharedMemoryTensors; dir: SharedMemoryDir } {
  const dir = SharedMemoryDir.create();
  if (!dir) throw new Error(`no shared-memory directory under ${SHM_BASE}`);
  dirs.push(dir);
  const redis = new FakeStore();
  return { redis, coordinator: new SharedMemoryTensors(redis, dir, MIN), worker: new SharedMemoryTensors(redis, undefined, MIN), dir };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const buffer = (n: number) => new Uint8Array(n);
const slotFiles = (dir: SharedMemoryDir, kind: 'p' | 'r') => readdirSync(dir.path).filter((f) => f.startsWith(`${kind}.`));

afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

describe.skipIf(!canShare)('SharedMemoryTensors', () => {
  it('sends θ and results through files, Redis holding pointers, and gives the same bytes back', async () => {
    const { redis, coordinator, worker, dir } = pair();
    const theta = bytes(5000, 1);
    await coordinator.set('theta', theta, 1000);
    const stored = defined(redis.values.get('theta'), 'theta');
    expect(stored.byteLength).toBeLessThan(160);
    expect(decodePointer(stored)).toMatchObject({ dir: dir.path, length: 5000 });
    expect(await worker.get('theta', buffer)).toEqual(theta);

    const result = bytes(3000, 2);
    await worker.rpushExpire('results', result, 1000); // the worker has read θ from the directory: results go there too
    expect(decodePointer(defined(redis.lists.get('results'), 'results')[0])).toMatchObject({ dir: dir.path, length: 3000 });
    expect(await coordinator.blpop('results', 1, buffer)).toEqual(result);
    expect(slotFiles(dir, 'r').every((f) => f.endsWith('.free'))).toBe(true); // handed back once read
  });

  it('passes small values through Redis as they are', async () => {
    const { redis, coordinator, worker } = pair();
    const small = bytes(MIN - 1, 3);
    await coordinator.set('small', small, 1000);
    expect(redis.values.get('small')).toEqual(small);
    expect(await worker.get('small', buffer)).toEqual(small);
    expect(await worker.get('missing', buffer)).toBeNull();
    await worker.rpushExpire('results', small, 1000);
    expect(await coordinator.blpop('results', 1, buffer)).toEqual(small);
  });

  it('hands a result’s slot back when its RPUSH fails, so that tries again do not use up the worker’s slots', async () => {
    const { redis, coordinator, worker, dir } = pair();
    await coordinator.set('theta', bytes(5000, 1), 1000);
    await worker.get('theta', buffer); // results go through the directory from now on
    const push = redis.rpushExpire.bind(redis);
    let failing = 10; // more than a worker's 4 result slots
    redis.rpushExpire = async (key: string, value: Uint8Array) => {
      if (failing-- > 0) throw new Error('connection lost');
      return push(key, value);
    };
    for (let i = 0; i < 10; i++) await expect(worker.rpushExpire('results', bytes(3000, 2), 1000)).rejects.toThrow('connection lost');
    expect(slotFiles(dir, 'r')).toEqual([expect.stringMatching(/\.free$/)]); // one slot, free again each time
    await worker.rpushExpire('results', bytes(3000, 4), 1000);
    expect(decodePointer(defined(redis.lists.get('results'), 'results')[0])).toMatchObject({ dir: dir.path, length: 3000 });
    expect(await coordinator.blpop('results', 1, buffer)).toEqual(bytes(3000, 4));
  });

  it('reuses slot files: θ of each step replaces the one before without new files', async () => {
    const { coordinator, worker, dir } = pair();
    for (let step = 0; step < 6; step++) {
      await coordinator.set(`theta:${step}`, bytes(4096, step), 1000);
      expect(await worker.get(`theta:${step}`, buffer)).toEqual(bytes(4096, step));
      if (step > 0) await coordinator.unlink(`theta:${step - 1}`);
    }
    expect(slotFiles(dir, 'p')).toHaveLength(2);
  });

  it('turns "skip" and a stale pointer into what the caller can act on', async () => {
    const { redis, coordinator, worker } = pair();
    await coordinator.set('theta', bytes(2048, 4), 1000);
    expect(await worker.get('theta', () => 'skip')).toEqual(new SkippedBulk(2048));
    const pointer = defined(redis.values.get('theta'), 'theta');
    await coordinator.set('theta', bytes(2048, 5), 1000); // the slot goes back; the old pointer names a file now gone
    redis.values.set('old', pointer);
    await expect(worker.get('old', buffer)).rejects.toThrow(/old: .*(ENOENT|no such file)/);
  });

  it('tells a worker that cannot open the directory so, and falls back to Redis for the rest of the run', async () => {
    const { redis, coordinator, worker } = pair();
    await coordinator.set('theta', bytes(2048, 6), 1000);
    const elsewhere = pointerIn(redis.values.get('theta'));
    redis.values.set('theta', Buffer.from(`GQSHM1 ${SHM_BASE}/gradq-zzzzzz ${elsewhere.slot} 2048`));
    const error = await worker.get('theta', buffer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SharedMemoryUnreachableError);
    expect((error as Error).message.startsWith(SHM_UNREACHABLE)).toBe(true);

    expect(coordinator.fallBack()).toBe(true);
    expect(coordinator.fallBack()).toBe(false);
    expect(await coordinator.get('theta', buffer)).toBeNull(); // a pointer reads as missing: the caller writes θ again
    await coordinator.set('theta', bytes(2048, 7), 1000);
    expect(redis.values.get('theta')).toEqual(bytes(2048, 7));
  });

  it.skipIf(process.getuid?.() !== 0)('takes another user’s directory for one it cannot open (root: chown)', async () => {
    const { coordinator, worker, dir } = pair();
    await coordinator.set('theta', bytes(2048, 13), 1000);
    chownSync(dir.path, 4321, 4321);
    await expect(worker.get('theta', buffer)).rejects.toThrow(/^shared memory unreachable: .*another user’s directory/);
  });

  it('follows no pointer into a directory that is not a private gradq directory of this user', async () => {
    const { redis, coordinator, worker, dir } = pair();
    await coordinator.set('theta', bytes(2048, 8), 1000);
    const { slot } = pointerIn(redis.values.get('theta'));
    for (const path of ['/etc', `${SHM_BASE}/../etc/gradq-abcdef`, `/tmp/gradq-abcdef`]) {
      redis.values.set('theta', Buffer.from(`GQSHM1 ${path} ${slot} 2048`));
      await expect(worker.get('theta', buffer)).rejects.toBeInstanceOf(InvalidMessageError);
    }
    chmodSync(dir.path, 0o755);
    redis.values.set('open', Buffer.from(`GQSHM1 ${dir.path} ${slot} 2048`));
    await expect(worker.get('open', buffer)).rejects.toThrow(/not a gradq directory of this user/);
  });

  it('rejects, as a skipped message with its reason, a result that points anywhere but its own directory', async () => {
    const { redis, coordinator, worker, dir } = pair();
    const other = pair();
    await other.coordinator.set('theta', bytes(2048, 9), 1000);
    await other.worker.get('theta', buffer);
    await other.worker.rpushExpire('results', bytes(2048, 10), 1000);
    redis.lists.set('results', defined(other.redis.lists.get('results'), 'results'));
    const popped = await coordinator.blpop('results', 1, buffer);
    expect(popped).toBeInstanceOf(SkippedBulk);
    expect((popped as SkippedBulk).reason).toMatch(/not this run's directory/);

    await coordinator.set('theta', bytes(2048, 11), 1000);
    await worker.get('theta', buffer);
    await worker.rpushExpire('results', bytes(2048, 12), 1000);
    const { slot } = pointerIn(defined(redis.lists.get('results'), 'results')[0]);
    renameSync(join(dir.path, slot), join(dir.path, `${slot}x`)); // gone before read
    const gone = await coordinator.blpop('results', 1, buffer);
    expect((gone as SkippedBulk).reason).toMatch(/ENOENT|no such file/);
  });
});

describe.skipIf(!canShare)('SharedMemoryDir', () => {
  it('makes a private directory and removes it, and removes one whose owner died', () => {
    const dir = defined(SharedMemoryDir.create(), 'the directory');
    expect(readdirSync(SHM_BASE)).toContain(dir.path.slice(SHM_BASE.length + 1));
    dir.remove();
    expect(existsSync(dir.path)).toBe(false);

    const base = mkdtempSync(join(SHM_BASE, 'gradq-test-'));
    try {
      chmodSync(base, 0o700);
      const stale = defined(SharedMemoryDir.create(base), 'the directory');
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      writeFileSync(join(stale.path, 'owner'), dead);
      const fresh = defined(SharedMemoryDir.create(base), 'the directory');
      expect(existsSync(stale.path)).toBe(false); // its owner is gone
      fresh.remove();
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
