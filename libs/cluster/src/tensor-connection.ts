import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { checkRedisUrl, redactRedisUrl } from './redis-url.js';
import { RespError, RespProtocolError, RespReplyParser, SkippedBulk, type BulkSink, type RespValue } from './resp-reply-parser.js';

/**
 * A lean Redis connection for the few commands that carry tensors: SET θ, GET θ, RPUSH a result message, BLPOP
 * it. ioredis (which BullMQ needs, and which carries everything else) copies a large argument into each
 * command and gathers a large reply from its chunks before handing it over; here an argument is written to
 * the socket as it is (a view of the parameters, a worker's message buffer) and a reply's bulk string is
 * copied once, from each socket chunk straight into the buffer its reader gives (see RespReplyParser). On
 * this 2-core machine that halves the time a 400 KB tensor spends in the client (see README).
 *
 * Commands are pipelined on one socket and answered in order. The connection is opened on first use and again
 * after it was lost: a lost connection fails the commands in flight (their callers decide: a worker's job
 * fails and is recomputed, the coordinator polls again), it does not stall them. It speaks RESP2, with AUTH
 * (user and password of the URL) and SELECT (its /db), over TLS for rediss://.
 */
export class TensorConnection {
  private link: Link | undefined;
  private readonly url: URL;
  private readonly db: string;
  private closed = false;

  constructor(
    url: string,
    private readonly connectTimeoutMs = 5000,
  ) {
    this.url = checkRedisUrl(url);
    this.db = this.url.pathname.replace(/^\//, '');
    if (this.db !== '' && !/^\d+$/.test(this.db)) {
      throw new Error(`--redis ${redactRedisUrl(url)}: database ${JSON.stringify(this.db)} is not a number`);
    }
  }

  /** SET key bytes PX ttl. `bytes` must not change until this resolves (it is written as it is). */
  async set(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    expectOk(await this.command(['SET', key, bytes, 'PX', String(ttlMs)]), 'SET');
  }

  async unlink(key: string): Promise<void> {
    await this.command(['UNLINK', key]);
  }

  /**
   * GET key into the buffer `into(length)` returns (at least length bytes); resolves to the value's bytes (a
   * view of that buffer), null when the key does not exist, or a SkippedBulk when `into` returned 'skip'.
   */
  async get(key: string, into: (length: number) => Uint8Array | 'skip'): Promise<Uint8Array | SkippedBulk | null> {
    const reply = await this.command(['GET', key], (_index, length) => into(length));
    if (reply !== null && !(reply instanceof Uint8Array) && !(reply instanceof SkippedBulk)) throw unexpected('GET', reply);
    return reply;
  }

  /** RPUSH key bytes, then PEXPIRE key ttl (pipelined). `bytes` must not change until this resolves. */
  async rpushExpire(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    await Promise.all([this.command(['RPUSH', key, bytes]), this.command(['PEXPIRE', key, String(ttlMs)])]);
  }

  /**
   * BLPOP key timeoutS: the value popped, read into `into(length)` like get(), or null after timeoutS seconds.
   * A server that has not answered graceMs after the timeout is taken for a dead connection (the command fails).
   */
  async blpop(
    key: string,
    timeoutS: number,
    into: (length: number) => Uint8Array | 'skip',
    graceMs = 2000,
  ): Promise<Uint8Array | SkippedBulk | null> {
    const reply = await this.command(
      ['BLPOP', key, String(timeoutS)],
      (index, length) => (index === 1 ? into(length) : undefined), // bulk 0 is the key
      timeoutS * 1000 + graceMs,
    );
    if (reply === null) return null;
    if (!Array.isArray(reply) || reply.length !== 2) throw unexpected('BLPOP', reply);
    const value = reply[1];
    if (!(value instanceof Uint8Array) && !(value instanceof SkippedBulk)) throw unexpected('BLPOP', value);
    return value;
  }

  /** Sends QUIT and closes once the commands in flight are answered; later commands fail. */
  async quit(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const link = this.link;
    if (!link) return;
    await send(link, ['QUIT']).catch(() => undefined);
    link.socket.destroy();
  }

  /** Closes at once: the commands in flight fail. */
  disconnect(): void {
    this.closed = true;
    this.link?.socket.destroy();
  }

  private async command(args: Array<string | Uint8Array>, sink?: BulkSink, timeoutMs?: number): Promise<RespValue> {
    if (this.closed) throw new Error(`connection to Redis at ${redactRedisUrl(this.url.href)} is closed`);
    const reply = await send(this.link ?? this.open(), args, sink, timeoutMs);
    if (reply instanceof RespError) throw new Error(`Redis ${String(args[0])}: ${reply.message}`);
    return reply;
  }

  /** Opens the socket; AUTH and SELECT go first, so every command after them runs authenticated, in the db. */
  private open(): Link {
    const u = this.url;
    const port = u.port === '' ? 6379 : Number(u.port);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const tls = u.protocol === 'rediss:';
    // Plain TCP reads into one buffer of the connection's own (onread) rather than a new Buffer per chunk: a 400 KB
    // tensor is several chunks, and those allocations alone made the coordinator collect garbage every few steps.
    const readBuffer = tls ? undefined : Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const feed = (chunk: Uint8Array): void => {
      try {
        parser.feed(chunk);
      } catch (e) {
        socket.destroy(e as Error);
      }
    };
    const socket = tls
      ? tlsConnect({ host, port, servername: host })
      : netConnect({ host, port, onread: { buffer: readBuffer as Buffer, callback: (n, buffer) => (feed(buffer.subarray(0, n)), true) } });
    if (tls) socket.on('data', feed);
    const link: Link = { socket, inFlight: [] };
    this.link = link;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    const connectTimer = setTimeout(
      () => socket.destroy(new Error(`connect timed out after ${this.connectTimeoutMs} ms`)),
      this.connectTimeoutMs,
    );
    socket.once(tls ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
    const parser = new RespReplyParser(
      () => link.inFlight[0]?.sink,
      (value) => {
        const entry = link.inFlight.shift();
        if (!entry) throw new RespProtocolError('a reply to no command');
        clearTimeout(entry.timer);
        entry.resolve(value);
      },
    );
    let why: Error | undefined;
    socket.on('error', (e) => (why ??= e)); // reported to the commands in flight, on 'close'
    socket.once('close', () => {
      clearTimeout(connectTimer);
      if (this.link === link) this.link = undefined;
      const lost = new Error(`Redis at ${redactRedisUrl(u.href)}: connection lost (${why?.message ?? 'closed by the server'})`);
      for (const entry of link.inFlight.splice(0)) {
        clearTimeout(entry.timer);
        entry.reject(lost);
      }
    });
    const user = decodeURIComponent(u.username);
    const password = decodeURIComponent(u.password);
    const mustSucceed = (what: string) => (reply: RespValue) => {
      if (reply instanceof RespError) socket.destroy(new Error(`${what} failed: ${reply.message}`));
    };
    const ignore = (): void => undefined; // the command after it fails with the reason
    if (password !== '') void send(link, user === '' ? ['AUTH', password] : ['AUTH', user, password]).then(mustSucceed('AUTH'), ignore);
    if (this.db !== '') void send(link, ['SELECT', this.db]).then(mustSucceed(`SELECT ${this.db}`), ignore);
    return link;
  }
}

const READ_BUFFER_BYTES = 256 * 1024;

/** One socket and the commands sent on it that wait for their replies, oldest first. */
interface Link {
  socket: Socket;
  inFlight: Array<{ sink?: BulkSink; resolve: (v: RespValue) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }>;
}

/** Sends a command; resolves to its reply (an error reply too). After timeoutMs without one, the link is dropped. */
function send(link: Link, args: Array<string | Uint8Array>, sink?: BulkSink, timeoutMs?: number): Promise<RespValue> {
  return new Promise((resolve, reject) => {
    const entry: Link['inFlight'][number] = { sink, resolve, reject };
    if (timeoutMs !== undefined) {
      entry.timer = setTimeout(() => link.socket.destroy(new Error(`no reply to ${String(args[0])} in ${timeoutMs} ms`)), timeoutMs);
    }
    link.inFlight.push(entry);
    writeCommand(link.socket, args);
  });
}

/** Writes one command as a RESP array of bulk strings; a Uint8Array argument is written as it is, not copied. */
function writeCommand(socket: Socket, args: Array<string | Uint8Array>): void {
  let head = `*${args.length}\r\n`;
  socket.cork();
  for (const a of args) {
    if (typeof a === 'string') {
      head += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
    } else {
      socket.write(`${head}$${a.byteLength}\r\n`);
      socket.write(a);
      head = '\r\n';
    }
  }
  socket.write(head);
  process.nextTick(() => socket.uncork());
}

function expectOk(reply: RespValue, what: string): void {
  if (reply !== 'OK') throw unexpected(what, reply);
}

function unexpected(what: string, reply: RespValue): Error {
  const shown = reply instanceof Uint8Array ? `${reply.length} bytes` : JSON.stringify(reply)?.slice(0, 80);
  return new Error(`Redis ${what}: unexpected reply ${shown}`);
}
