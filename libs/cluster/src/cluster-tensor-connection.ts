import { createRequire } from 'node:module';
import { checkRedisUrl, redactRedisUrl } from './redis-url.js';
import type { SkippedBulk } from './resp-reply-parser.js';
import {
  RedisConnectionError,
  RedisReplyError,
  TensorConnection,
  type StreamEntry,
  type SlotRange,
  type TensorStore,
} from './tensor-connection.js';

// cluster-key-slot (the CRC16 of a key's hash tag, which ioredis uses too) ships no types.
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

/** Redirections followed for one command before it fails (ioredis' Cluster allows 16). */
const MAX_REDIRECTIONS = 16;
const SLOTS = 16384;

/**
 * The tensor commands of TensorConnection against a Redis Cluster: each key goes to the master that serves its
 * hash slot, over a TensorConnection of its own to that node (opened on first use, with the URL's user and
 * password). The slot table comes from CLUSTER SLOTS, asked of the node of the URL first, then of the nodes known;
 * it is read again after a MOVED reply (the slot moved: the command goes to the node named) and after a lost
 * connection (a node may have failed over). An ASK reply (the slot is migrating) sends that one command, after
 * ASKING, to the node named. A CLUSTERDOWN or TRYAGAIN reply (the cluster is reconfiguring) fails the command
 * with a RedisConnectionError, which callers retry, as they do a lost connection. Each command names one key, so
 * nothing crosses slots.
 */
export class ClusterTensorConnection implements TensorStore {
  /** Keys live on different nodes: commands on two keys may run in either order. */
  readonly ordered: boolean = false;
  private readonly seed: URL;
  private readonly nodes = new Map<string, TensorConnection>();
  /** Node ("host:port") of each slot, once known. */
  private slots: string[] | undefined;
  private refreshing: Promise<void> | undefined;
  private closed = false;

  /** `url` of any node of the cluster, as checkRedisUrl accepts it (database 0 only: a cluster has no other). */
  constructor(
    url: string,
    private readonly connectTimeoutMs = 5000,
  ) {
    this.seed = checkRedisUrl(url);
  }

  set(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    return this.route(key, (c) => c.set(key, bytes, ttlMs));
  }

  unlink(key: string): Promise<void> {
    return this.route(key, (c) => c.unlink(key));
  }

  get(key: string, into: (length: number) => Uint8Array | 'skip'): Promise<Uint8Array | SkippedBulk | null> {
    return this.route(key, (c) => c.get(key, into));
  }

  rpushExpire(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    return this.route(key, (c) => c.rpushExpire(key, bytes, ttlMs));
  }

  blpop(
    key: string,
    timeoutS: number,
    into: (length: number) => Uint8Array | 'skip',
    graceMs?: number,
  ): Promise<Uint8Array | SkippedBulk | null> {
    return this.route(key, (c) => c.blpop(key, timeoutS, into, graceMs));
  }

  announce(clock: string, fields: readonly string[], ttlMs: number): Promise<void> {
    return this.route(clock, (c) => c.announce(clock, fields, ttlMs));
  }

  awaitAnnounce(clock: string, afterId: string, blockMs: number, graceMs?: number): Promise<StreamEntry[] | null> {
    return this.route(clock, (c) => c.awaitAnnounce(clock, afterId, blockMs, graceMs));
  }

  /** The node ("host:port") that serves `key`, as this connection knows it now (after reading the slot table). */
  async nodeOf(key: string): Promise<string> {
    const slots = await this.slotTable();
    const node = slots[calculateSlot(key)];
    if (node === undefined) throw this.unserved(calculateSlot(key));
    return node;
  }

  async quit(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.nodes.values()].map((c) => c.quit()));
  }

  disconnect(): void {
    this.closed = true;
    for (const c of this.nodes.values()) c.disconnect();
  }

  /** Runs `command` on the node of `key`'s slot, following MOVED and ASK replies. */
  private async route<T>(key: string, command: (connection: TensorConnection) => Promise<T>): Promise<T> {
    const slot = calculateSlot(key);
    let asked: string | undefined;
    for (let redirections = 0; ; redirections++) {
      if (this.closed) throw new RedisConnectionError(`connection to the Redis Cluster at ${redactRedisUrl(this.seed.href)} is closed`);
      let node = asked;
      if (node === undefined) {
        node = (await this.slotTable())[slot];
        if (node === undefined) {
          this.slots = undefined; // read again next time: the cluster may be failing over
          throw this.unserved(slot);
        }
      }
      const connection = this.node(node);
      try {
        if (asked === undefined) return await command(connection);
        const asking = connection.asking(); // sent first on the same socket, so it applies to the command
        const [, result] = await Promise.all([asking, command(connection)]);
        return result;
      } catch (e) {
        if (e instanceof RedisReplyError && /\b(CLUSTERDOWN|TRYAGAIN)\b/.test(e.message)) {
          // The cluster is reconfiguring (a node failing over, a slot unserved, a migration): worth trying again.
          this.slots = undefined;
          throw new RedisConnectionError(`Redis Cluster at ${redactRedisUrl(this.seed.href)}: ${e.message}`);
        }
        if (e instanceof RedisConnectionError) this.slots = undefined;
        const redirect = e instanceof RedisReplyError ? parseRedirect(e.message, hostOfNode(node)) : undefined;
        if (redirect === undefined || redirections >= MAX_REDIRECTIONS) throw e;
        asked = undefined;
        if (redirect.kind === 'ASK') asked = redirect.node;
        else {
          if (this.slots) this.slots[slot] = redirect.node;
          void this.refresh().catch(() => undefined); // other slots have probably moved too
        }
      }
    }
  }

  private async slotTable(): Promise<string[]> {
    if (this.slots) return this.slots;
    await this.refresh();
    if (!this.slots) throw new RedisConnectionError(`Redis Cluster at ${redactRedisUrl(this.seed.href)}: no slot table`);
    return this.slots;
  }

  /** Reads CLUSTER SLOTS from the first node that answers: the URL's, then the others known. */
  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      const seed = this.seed.port === '' ? `${this.seed.host}:6379` : this.seed.host;
      const candidates = [seed, ...[...this.nodes.keys()].filter((n) => n !== seed)];
      let last: unknown;
      for (const candidate of candidates) {
        try {
          this.slots = slotTable(await this.node(candidate).clusterSlots());
          return;
        } catch (e) {
          last = e;
          if (e instanceof RedisReplyError) break; // a node that answers but refuses (not a cluster, no permission)
        }
      }
      throw last;
    })().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private node(node: string): TensorConnection {
    let connection = this.nodes.get(node);
    if (!connection) {
      const url = new URL(this.seed.href);
      url.host = node;
      url.pathname = '';
      connection = new TensorConnection(url.href, this.connectTimeoutMs);
      this.nodes.set(node, connection);
    }
    return connection;
  }

  private unserved(slot: number): RedisConnectionError {
    return new RedisConnectionError(
      `Redis Cluster at ${redactRedisUrl(this.seed.href)}: no node serves hash slot ${slot} (is the cluster down?)`,
    );
  }
}

/** The node of every slot from CLUSTER SLOTS ranges (slots no range covers stay undefined). */
function slotTable(ranges: SlotRange[]): string[] {
  const table = new Array<string>(SLOTS);
  for (const { start, end, host, port } of ranges) {
    for (let s = Math.max(0, start); s <= Math.min(SLOTS - 1, end); s++) table[s] = nodeKey(host, port);
  }
  return table;
}

/** "MOVED 3999 127.0.0.1:6381" or "ASK 3999 :6381" (an empty host: `answeredBy`, the node that answered) ending a message. */
export function parseRedirect(message: string, answeredBy: string): { kind: 'MOVED' | 'ASK'; slot: number; node: string } | undefined {
  const m = /\b(MOVED|ASK) (\d+) (\S*):(\d+)$/.exec(message);
  if (!m) return undefined;
  return { kind: m[1] as 'MOVED' | 'ASK', slot: Number(m[2]), node: nodeKey(m[3] === '' ? answeredBy : m[3], Number(m[4])) };
}

/** A node as "host:port", an IPv6 host in brackets (as URL.host has it). */
function nodeKey(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/** The host of a node key, without brackets. */
function hostOfNode(node: string): string {
  return node.slice(0, node.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
}
