import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { checkRedisUrl, redactRedisUrl } from './redis-url.js';
import { RespError, RespProtocolError, RespReplyParser, SkippedBulk, type BulkSink, type RespValue } from './resp-reply-parser.js';

/** The server answered a command with an error: the command is wrong here, sending it again will not help. */
export class RedisReplyError extends Error {
  override readonly name = 'RedisReplyError';
}

/**
 * The connection was lost, timed out or refused (or its AUTH or SELECT failed) before the command was answered:
 * the command may be sent again on a new connection.
 */
export class RedisConnectionError extends Error {
  override readonly name = 'RedisConnectionError';
}

/**
 * A lean Redis connection for the few commands that carry tensors: SET θ, GET θ, RPUSH a result message, BLPOP
 * it. ioredis (which BullMQ needs, and which carries everything else) copies a large argument into each
 * command and gathers a large reply from its chunks before handing it over; here an argument is written to
 * the socket as it is (a view of the parameters, a worker's message buffer) and a reply's bulk string is
 * copied once, from each socket chunk straight into the buffer its reader gives (see RespReplyParser). On
 * this 2-core machine that halves the time a 400 KB tensor spends in the client (see README).
 *
 * Commands are pipelined on one socket and answered in order. The connection is opened on first use and again
 * after it was lost: a lost connection fails the commands in flight with a RedisConnectionError (their callers
 * decide: a worker's job fails and is recomputed, the coordinator tries again), it does not stall them; so does a
 * server that has sent no byte of a reply REPLY_MS after the command (a BLPOP: its timeout and a grace). It
 * speaks RESP2, over TLS for rediss://. A new connection first sends AUTH (user and password of the URL) and
 * SELECT (its /db) and holds every command until they have succeeded; when either fails, the held commands fail
 * without being sent.
 */
export class TensorConnection {
  /** Redis runs this connection's commands in the order they are called (one socket): see TensorStore. */
  readonly ordered: boolean = true;
  private link: Link | undefined;
  private readonly url: URL;
  private readonly user: string;
  private readonly password: string;
  private readonly db: string;
  private closed = false;

  /** `url` as checkRedisUrl accepts it. */
  constructor(
    url: string,
    private readonly connectTimeoutMs = 5000,
  ) {
    this.url = checkRedisUrl(url);
    this.user = decodeURIComponent(this.url.username);
    this.password = decodeURIComponent(this.url.password);
    this.db = this.url.pathname.replace(/^\//, '');
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
   * A server that has sent nothing graceMs after the timeout is taken for a dead connection (the command fails).
   */
  async blpop(
    key: string,
    timeoutS: number,
    into: (length: number) => Uint8Array | 'skip',
    graceMs = 2000,
  ): Promise<Uint8Array | SkippedBulk | null> {
    if (!(timeoutS > 0)) throw new RangeError(`blpop: timeout ${timeoutS} s (0 would block for ever)`);
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

  /**
   * XADD clock MAXLEN ~ 64 * <fields>, then PEXPIRE clock ttl (pipelined): adds an entry to the run's clock (a
   * stream: clock-entry.ts says what its fields are).
   */
  async announce(clock: string, fields: readonly string[], ttlMs: number): Promise<void> {
    if (fields.length === 0 || fields.length % 2 !== 0) throw new RangeError(`announce: ${fields.length} field names and values`);
    await Promise.all([
      this.command(['XADD', clock, 'MAXLEN', '~', String(CLOCK_ENTRIES), '*', ...fields]),
      this.command(['PEXPIRE', clock, String(ttlMs)]),
    ]);
  }

  /**
   * XREAD BLOCK blockMs STREAMS clock afterId: the entries added after the entry `afterId` ('0': all), oldest
   * first, each with its fields as text; null when none came in blockMs. A command sent after this one on the
   * connection waits in Redis until this one is answered (so a GET of the θ expected next comes with the entry).
   * With blockMs 0, XREAD without BLOCK: the entries there now (null: none), holding nothing up behind it.
   * What the fields say is the caller's to check (anyone who can write to Redis can add an entry).
   */
  async awaitAnnounce(clock: string, afterId: string, blockMs: number, graceMs = 2000): Promise<StreamEntry[] | null> {
    if (!(blockMs >= 0 && Number.isFinite(blockMs))) throw new RangeError(`awaitAnnounce: block ${blockMs} ms`);
    const block = blockMs > 0 ? ['BLOCK', String(Math.ceil(blockMs))] : [];
    const args = ['XREAD', ...block, 'STREAMS', clock, afterId];
    const reply = await this.command(args, undefined, blockMs > 0 ? blockMs + graceMs : undefined);
    if (reply === null) return null;
    const entries = Array.isArray(reply) && reply.length === 1 && Array.isArray(reply[0]) ? reply[0][1] : undefined;
    if (!Array.isArray(entries) || entries.length === 0) throw unexpected('XREAD', reply);
    const text = (v: RespValue | undefined): string | undefined => (v instanceof Uint8Array ? Buffer.from(v).toString() : undefined);
    return entries.map((entry) => {
      const [id, fields] = Array.isArray(entry) ? entry : [];
      const values = Array.isArray(fields) ? fields.map(text) : undefined;
      const name = text(id);
      if (name === undefined || values === undefined || values.some((v) => v === undefined)) throw unexpected('XREAD', entry);
      return { id: name, fields: values as string[] };
    });
  }

  /**
   * CLUSTER SLOTS of a Redis Cluster node: which node serves each range of hash slots (masters only). A node given
   * with an empty host is this connection's host (the node answers for itself).
   */
  async clusterSlots(): Promise<SlotRange[]> {
    const reply = await this.command(['CLUSTER', 'SLOTS']);
    if (!Array.isArray(reply)) throw unexpected('CLUSTER SLOTS', reply);
    return reply.map((range) => {
      const [start, end, master] = Array.isArray(range) ? range : [];
      const [host, port] = Array.isArray(master) ? master : [];
      if (typeof start !== 'number' || typeof end !== 'number' || !(host instanceof Uint8Array) || typeof port !== 'number') {
        throw unexpected('CLUSTER SLOTS', range);
      }
      const name = Buffer.from(host).toString();
      return { start, end, host: name === '' ? this.url.hostname.replace(/^\[(.*)\]$/, '$1') : name, port };
    });
  }

  /**
   * ASKING: the next command sent on this connection (which the caller sends at once, without awaiting this)
   * may use a slot this node is importing, as the ASK redirection of a Redis Cluster asks.
   */
  async asking(): Promise<void> {
    expectOk(await this.command(['ASKING']), 'ASKING');
  }

  /** Sends QUIT and closes once the commands in flight are answered, or after QUIT_MS; later commands fail. */
  async quit(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const link = this.link;
    if (!link) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise((resolve) => (timer = setTimeout(resolve, QUIT_MS)));
    await Promise.race([send(link, ['QUIT']).catch(() => undefined), deadline]);
    clearTimeout(timer);
    link.socket.destroy();
  }

  /** Closes at once: the commands in flight fail. */
  disconnect(): void {
    this.closed = true;
    this.link?.socket.destroy();
  }

  private async command(args: Array<string | Uint8Array>, sink?: BulkSink, timeoutMs?: number): Promise<RespValue> {
    if (this.closed) throw new RedisConnectionError(`connection to Redis at ${redactRedisUrl(this.url.href)} is closed`);
    const link = this.link !== undefined && !this.link.socket.destroyed ? this.link : this.open();
    if (link.handshake) await link.handshake;
    const reply = await send(link, args, sink, timeoutMs ?? REPLY_MS);
    if (reply instanceof RespError) throw new RedisReplyError(`Redis ${String(args[0])}: ${reply.message}`);
    return reply;
  }

  /** Opens the socket and starts its handshake (AUTH, SELECT), which the commands wait for. */
  private open(): Link {
    const u = this.url;
    const port = u.port === '' ? 6379 : Number(u.port);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    const tls = u.protocol === 'rediss:';
    // Plain TCP reads into one buffer of the connection's own (onread) rather than a new Buffer per chunk: a 400 KB
    // tensor is several chunks, and those allocations alone made the coordinator collect garbage every few steps.
    const readBuffer = tls ? undefined : Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const feed = (chunk: Uint8Array): void => {
      // Bytes are arriving: the oldest command's reply has begun, so its deadline no longer applies.
      const head = link.inFlight[0];
      if (head?.timer) {
        clearTimeout(head.timer);
        head.timer = undefined;
      }
      try {
        parser.feed(chunk);
      } catch (e) {
        socket.destroy(e as Error);
      }
    };
    const socket = tls
      ? tlsConnect({ host, port, servername: isIP(host) === 0 ? host : undefined })
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
    const lost = (why: Error | undefined): RedisConnectionError =>
      new RedisConnectionError(`Redis at ${redactRedisUrl(u.href)}: connection lost (${why?.message ?? 'closed by the server'})`);
    let why: Error | undefined;
    socket.on('error', (e) => (why ??= e)); // reported to the commands in flight, on 'close'
    socket.once('close', () => {
      clearTimeout(connectTimer);
      if (this.link === link) this.link = undefined;
      link.lost = lost(why);
      for (const entry of link.inFlight.splice(0)) {
        clearTimeout(entry.timer);
        entry.reject(link.lost);
      }
    });
    if (this.password !== '' || this.db !== '') {
      link.handshake = this.handshake(link).then(
        () => void (link.handshake = undefined),
        (e: unknown) => {
          // The commands waiting fail as the connection does (a lost connection has said why already).
          if (e instanceof RedisConnectionError) throw e;
          socket.destroy(e as Error);
          throw lost(e as Error);
        },
      );
      link.handshake.catch(() => undefined); // rejections reach the commands that await it
    }
    return link;
  }

  /**
   * AUTH, then SELECT. Like ioredis, a password given for a server that has none is only a warning (the
   * server's reply says so) and the connection goes on.
   */
  private async handshake(link: Link): Promise<void> {
    if (this.password !== '') {
      const auth = this.user === '' ? ['AUTH', this.password] : ['AUTH', this.user, this.password];
      const reply = await send(link, auth, undefined, REPLY_MS);
      if (reply instanceof RespError && !/without any password configured|no password is set/i.test(reply.message)) {
        throw new Error(`AUTH failed: ${reply.message}`);
      }
    }
    if (this.db !== '') {
      const reply = await send(link, ['SELECT', this.db], undefined, REPLY_MS);
      if (reply instanceof RespError) throw new Error(`SELECT ${this.db} failed: ${reply.message}`);
    }
  }
}

/** An entry of a run's clock: step `step` announced to the leases of set `lease`; `id` the stream entry's. */
/** An entry of a stream as XREAD gives it: its id and its fields (names and values in turn) as text. */
export interface StreamEntry {
  id: string;
  fields: string[];
}

/** A range of hash slots of a Redis Cluster and the master that serves it. */
export interface SlotRange {
  start: number;
  end: number;
  host: string;
  port: number;
}

const QUIT_MS = 1000;
/** Entries the run's clock keeps (about: MAXLEN ~); a lease holder needs only the newest. */
const CLOCK_ENTRIES = 64;
/** A server that has sent no byte of a (non-blocking) command's reply this long after it was sent is taken for dead. */
const REPLY_MS = 30_000;
const READ_BUFFER_BYTES = 256 * 1024;

/**
 * One socket, the commands sent on it that wait for their replies (oldest first), its handshake while it runs,
 * and why it was lost once it was.
 */
interface Link {
  socket: Socket;
  inFlight: Array<{ sink?: BulkSink; resolve: (v: RespValue) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }>;
  handshake?: Promise<void>;
  lost?: RedisConnectionError;
}

/**
 * Sends a command; resolves to its reply (an error reply too). If no byte of the reply has come timeoutMs after
 * sending, the link is dropped.
 */
function send(link: Link, args: Array<string | Uint8Array>, sink?: BulkSink, timeoutMs?: number): Promise<RespValue> {
  if (link.lost) return Promise.reject(link.lost);
  return new Promise((resolve, reject) => {
    const entry: Link['inFlight'][number] = { sink, resolve, reject };
    if (timeoutMs !== undefined) {
      entry.timer = setTimeout(() => link.socket.destroy(new Error(`no reply to ${String(args[0])} in ${timeoutMs} ms`)), timeoutMs);
    }
    link.inFlight.push(entry);
    writeCommand(link.socket, args);
  });
}

/**
 * Writes one command as a RESP array of bulk strings; a Uint8Array argument is written as it is, not copied. The
 * command leaves at once, in one write: a worker's result push is on the wire before BullMQ's completion of the
 * job that follows it on another connection (uncorked on the next tick instead, the push waited behind that
 * script in Redis: 0.64 ms from the push to its acknowledgement, against 0.39 ms now, mlp:784-128-10 on 2 cores).
 */
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
  socket.uncork();
}

function expectOk(reply: RespValue, what: string): void {
  if (reply !== 'OK') throw unexpected(what, reply);
}

function unexpected(what: string, reply: RespValue): Error {
  const shown = reply instanceof Uint8Array ? `${reply.length} bytes` : JSON.stringify(reply)?.slice(0, 80);
  return new Error(`Redis ${what}: unexpected reply ${shown}`);
}

/**
 * The tensor commands, as TensorConnection (one server) and ClusterTensorConnection (a Redis Cluster) both give them.
 * `ordered`: Redis runs the store's commands in the order they are called, whatever their keys (one connection);
 * false when keys may live on different nodes.
 */
export type TensorStore = Pick<
  TensorConnection,
  'set' | 'unlink' | 'get' | 'rpushExpire' | 'blpop' | 'announce' | 'awaitAnnounce' | 'ordered' | 'quit' | 'disconnect'
>;
