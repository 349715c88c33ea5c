import type { ShardJob, ShardResult } from '@gradq/cluster';
import type { Queue } from 'bullmq';

/** A connected worker that has sent nothing for this long, while shards wait, is unresponsive. */
export const UNRESPONSIVE_MS = 10_000;
/** Worker names remembered (the least recently heard forgotten first): names come from outside. */
const MAX_NAMES = 1000;

/** The connected workers as a watchdog tick sees them. */
export interface WorkerSurvey {
  connected: number;
  /** Names of connected workers that have not answered for UNRESPONSIVE_MS (nor connected more recently). */
  unresponsive: string[];
}

/** A worker connection to the queue, from Redis's client list. */
export interface ConnectedWorker {
  /** The worker's --name (its default: host:pid-RAND). */
  name: string;
  /** The connection's address as Redis sees it (host:port). */
  addr: string;
  /** Milliseconds since the connection was made. */
  connectedMs: number;
}

/**
 * The named worker connections of `queue` (BullMQ names each worker's connection `<prefix>:<base64(queue)>:w:<name>`),
 * and how many connections there are in all (workers without a name included).
 */
export async function connectedWorkers(queue: Queue<ShardJob, ShardResult[]>): Promise<{ count: number; named: ConnectedWorker[] }> {
  const prefix = `${queue.opts.prefix}:${Buffer.from(queue.name).toString('base64')}:w:`; // BullMQ's client name
  const clients = await queue.getWorkers();
  const named: ConnectedWorker[] = [];
  for (const c of clients) {
    const raw = String(c.rawname ?? '');
    if (!raw.startsWith(prefix)) continue; // a worker without a name: nothing to tell it by
    named.push({ name: raw.slice(prefix.length), addr: String(c.addr ?? ''), connectedMs: 1000 * Number(c.age ?? 0) });
  }
  return { count: clients.length, named };
}

/**
 * The workers of a run as the coordinator knows them, across steps: when each last answered (a result or a
 * failure report that passed validation, by the `worker` name in its header), which ones are failing (to report
 * a failing worker once, not at every job), and which are connected (BullMQ's client list names each worker's
 * connection after the worker, `gradq worker` giving its --name).
 */
export class WorkerRoster {
  private readonly lastHeard = new Map<string, number>(); // by name, least recently heard first
  private readonly failing = new Set<string>();

  /** A valid result from `worker`: it answered, and a failing streak of its is over. */
  delivered(worker: string, now = performance.now()): void {
    this.heard(worker, now);
    this.failing.delete(worker);
  }

  /** A failure report from `worker`: true when it starts a failing streak (worth a log line), false during one. */
  failed(worker: string, now = performance.now()): boolean {
    this.heard(worker, now);
    if (this.failing.has(worker)) return false;
    if (this.failing.size >= MAX_NAMES) this.failing.clear();
    this.failing.add(worker);
    return true;
  }

  /** Who is connected to `queue` now, and which of them have been silent for UNRESPONSIVE_MS. */
  async survey(queue: Queue<ShardJob, ShardResult[]>, now = performance.now()): Promise<WorkerSurvey> {
    const { count, named } = await connectedWorkers(queue);
    const unresponsive: string[] = [];
    for (const { name, connectedMs } of named) {
      const heard = this.lastHeard.get(name);
      const silentMs = heard === undefined ? connectedMs : Math.min(connectedMs, now - heard);
      if (silentMs >= UNRESPONSIVE_MS) unresponsive.push(name);
    }
    return { connected: count, unresponsive: unresponsive.sort() };
  }

  private heard(worker: string, now: number): void {
    this.lastHeard.delete(worker); // re-inserted: the Map's order is the order heard
    if (this.lastHeard.size >= MAX_NAMES) this.lastHeard.delete(this.lastHeard.keys().next().value as string);
    this.lastHeard.set(worker, now);
  }
}
