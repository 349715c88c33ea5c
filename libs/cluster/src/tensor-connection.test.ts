import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SkippedBulk } from './resp-reply-parser.js';
import { RedisConnectionError, TensorConnection } from './tensor-connection.js';

const REDIS = 'redis://127.0.0.1:6379';
const redis = new Redis(REDIS);
const prefix = `test-${randomUUID()}:`;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0)) await clean();
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

function connection(url = REDIS): TensorConnection {
  const c = new TensorConnection(url, 1000);
  cleanups.push(() => c.disconnect());
  return c;
}

/** A TCP server standing in for Redis: `reply` answers each chunk received (the test sends small commands). */
async function fakeRedis(
  reply: (text: string, socket: Socket) => void,
): Promise<{ url: string; received: string[]; accepted: () => number }> {
  const received: string[] = [];
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', (chunk) => {
      received.push(chunk.toString('latin1'));
      reply(chunk.toString('latin1'), socket);
    });
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`, received, accepted: () => accepted };
}

describe('TensorConnection', () => {
  it('SETs bytes that ioredis reads back unchanged, and GETs them into the buffer it is given', async () => {
    const c = connection();
    const value = randomBytes(1_000_003); // several socket chunks, an odd length
    await c.set(`${prefix}a`, value, 60_000);
    expect(Buffer.compare((await redis.getBuffer(`${prefix}a`)) as Buffer, value)).toBe(0);
    const pttl = await redis.pttl(`${prefix}a`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    const into = new Uint8Array(value.length + 5);
    const got = await c.get(`${prefix}a`, (length) => (length === value.length ? into : 'skip'));
    expect(got).toBeInstanceOf(Uint8Array);
    expect((got as Uint8Array).buffer).toBe(into.buffer);
    expect(Buffer.compare(Buffer.from(got as Uint8Array), value)).toBe(0);
  });

  it('GETs null for a missing key, and a SkippedBulk (nothing read into memory) for a value its reader skips', async () => {
    const c = connection();
    expect(await c.get(`${prefix}missing`, () => new Uint8Array(10))).toBeNull();
    await redis.set(`${prefix}b`, 'x'.repeat(100));
    expect(await c.get(`${prefix}b`, () => 'skip')).toEqual(new SkippedBulk(100));
    expect(await c.get(`${prefix}b`, (n) => new Uint8Array(n))).toHaveLength(100); // the connection goes on
  });

  it('RPUSHes with a TTL and BLPOPs in order; BLPOP gives null after its timeout', async () => {
    const c = connection();
    const popper = connection();
    const key = `${prefix}list`;
    const empty = performance.now();
    expect(await popper.blpop(key, 1, (n) => new Uint8Array(n))).toBeNull();
    expect(performance.now() - empty).toBeGreaterThan(900);
    const waiting = popper.blpop(key, 1, (n) => new Uint8Array(n));
    const messages = [randomBytes(300_000), randomBytes(7)];
    await Promise.all(messages.map((m) => c.rpushExpire(key, m, 30_000)));
    expect(Buffer.from((await waiting) as Uint8Array)).toEqual(messages[0]);
    expect(Buffer.from((await popper.blpop(key, 1, (n) => new Uint8Array(n))) as Uint8Array)).toEqual(messages[1]);
    const pttl = await redis.pttl(key);
    expect(pttl === -2 || (pttl > 0 && pttl <= 30_000)).toBe(true); // gone once empty, else expiring
  });

  it('rejects with the error Redis replies, and goes on with the next command', async () => {
    const c = connection();
    await redis.set(`${prefix}text`, 'not a list');
    await expect(c.rpushExpire(`${prefix}text`, new Uint8Array(4), 1000)).rejects.toThrow(/^Redis RPUSH: WRONGTYPE/);
    await c.unlink(`${prefix}text`);
    expect(await redis.exists(`${prefix}text`)).toBe(0);
  });

  it('fails the commands in flight when the connection is lost, and connects again for the next one', async () => {
    const { url } = await fakeRedis((text, socket) => {
      if (text.includes('BLPOP'))
        socket.destroy(); // the server goes away while a BLPOP waits
      else socket.write('$3\r\nabc\r\n');
    });
    const c = connection(url);
    const waiting = c.blpop('k', 5, (n) => new Uint8Array(n));
    await expect(waiting).rejects.toThrow(`Redis at ${url}: connection lost (closed by the server)`);
    const got = await c.get('k', (n) => new Uint8Array(n));
    expect(Buffer.from(got as Uint8Array).toString()).toBe('abc');
  });

  it('gives up on a BLPOP the server leaves unanswered, graceMs after its timeout', async () => {
    const { url } = await fakeRedis(() => undefined); // answers nothing
    const c = connection(url);
    const t0 = performance.now();
    await expect(c.blpop('k', 1, (n) => new Uint8Array(n), 300)).rejects.toThrow('connection lost (no reply to BLPOP in 1300 ms)');
    expect(performance.now() - t0).toBeGreaterThan(1200);
  });

  it('sends AUTH (user and password of the URL) and SELECT first, and holds the commands until both succeed', async () => {
    const { url, received } = await fakeRedis((text, socket) => {
      socket.write(text.includes('GET') ? '$2\r\nok\r\n' : '+OK\r\n');
    });
    const c = connection(url.replace('redis://', 'redis://ann:s%40cret@') + '/3');
    const got = await c.get('k', (n) => new Uint8Array(n));
    expect(Buffer.from(got as Uint8Array).toString()).toBe('ok');
    // Three separate chunks: SELECT went out only once AUTH was answered, GET once SELECT was.
    expect(received).toEqual([
      '*3\r\n$4\r\nAUTH\r\n$3\r\nann\r\n$6\r\ns@cret\r\n',
      '*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n',
      '*2\r\n$3\r\nGET\r\n$1\r\nk\r\n',
    ]);
  });

  it('fails the commands held behind a failed AUTH without sending them, never quoting the password', async () => {
    const { url, received } = await fakeRedis((_text, socket) => void socket.write('-WRONGPASS invalid username-password pair\r\n'));
    const c = connection(url.replace('redis://', 'redis://ann:s%40cret@') + '/3');
    const failed = (p: Promise<unknown>): Promise<Error> =>
      p.then(
        () => new Error('did not fail'),
        (e: unknown) => e as Error,
      );
    const errors = await Promise.all([failed(c.get('k', () => 'skip')), failed(c.unlink('k'))]);
    for (const error of errors) {
      expect(error).toBeInstanceOf(RedisConnectionError);
      expect(error.message).toBe(
        `Redis at redis://ann:***@127.0.0.1:${new URL(url).port}/3: connection lost (AUTH failed: WRONGPASS invalid username-password pair)`,
      );
    }
    expect(received.join('')).toBe('*3\r\n$4\r\nAUTH\r\n$3\r\nann\r\n$6\r\ns@cret\r\n');
  });

  it('goes on when a password is given to a Redis that has none (as ioredis does)', async () => {
    const c = connection(REDIS.replace('redis://', 'redis://:unneeded@'));
    await c.set(`${prefix}pw`, Uint8Array.of(1, 2), 60_000);
    expect(await c.blpop(`${prefix}empty`, 0.1, (n) => new Uint8Array(n))).toBeNull();
    expect(Buffer.from((await c.get(`${prefix}pw`, (n) => new Uint8Array(n))) as Uint8Array)).toEqual(Buffer.from([1, 2]));
  });

  it('keeps the connection after a BLPOP is answered: its deadline does not fire later', async () => {
    const { url, accepted } = await fakeRedis((text, socket) => {
      if (text.includes('BLPOP')) socket.write('*2\r\n$1\r\nk\r\n$3\r\nabc\r\n');
      else socket.write(':1\r\n');
    });
    const c = connection(url);
    await c.unlink('k'); // connects
    expect(Buffer.from((await c.blpop('k', 0.2, (n) => new Uint8Array(n), 100)) as Uint8Array).toString()).toBe('abc');
    await new Promise((r) => setTimeout(r, 500)); // past the BLPOP's 300 ms deadline
    await c.unlink('k');
    expect(accepted()).toBe(1);
  });

  it('refuses a URL whose database is not a number, a BLPOP that would block for ever, and commands after quit()', async () => {
    expect(() => new TensorConnection('redis://127.0.0.1:6379/zero')).toThrow('database "zero" is not a number');
    await expect(connection().blpop('k', 0, () => 'skip')).rejects.toThrow('blpop: timeout 0 s (0 would block for ever)');
    const c = connection();
    await c.unlink(`${prefix}nothing`);
    await c.quit();
    await expect(c.unlink(`${prefix}nothing`)).rejects.toThrow('connection to Redis at redis://127.0.0.1:6379 is closed');
  });

  it('fails when nothing listens, naming the address', async () => {
    const c = connection('redis://:pw@127.0.0.1:1');
    await expect(c.unlink('k')).rejects.toThrow(/^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1: connection lost \(connect ECONNREFUSED/);
  });
});
