import { InvalidMessageError } from '../invalid-message-error.js';
import { SkippedBulk } from '../resp-reply-parser.js';
import type { StreamEntry, TensorStore } from '../tensor-connection.js';
import { checkSharedDir, type SharedMemoryDir } from './shm-dir.js';
import { decodePointer, encodePointer, MAX_POINTER_BYTES, type ShmPointer } from './shm-pointer.js';
import { readSlot, releaseSlot, SlotWriter } from './shm-slots.js';

/** Tensors smaller than this travel through Redis as they are: a pointer saves nothing on them. */
export const MIN_SHARED_BYTES = 64 * 1024;
/** Slots of the coordinator (θ and replica states of two consecutive steps or rounds) and of each worker. */
const PARAM_SLOTS = 64;
const RESULT_SLOTS = 4;

/**
 * How a worker's failure report starts when θ is in shared memory it cannot open (it runs on another machine or in
 * another container): the coordinator then writes θ through Redis for the rest of the run (see fallBack).
 */
export const SHM_UNREACHABLE = 'shared memory unreachable:';

export class SharedMemoryUnreachableError extends Error {
  override readonly name = 'SharedMemoryUnreachableError';
}

/**
 * A TensorStore whose large values travel through files in a shared-memory directory when the reader is on the
 * same machine, Redis carrying a pointer to each (shm-pointer.ts). With convnet's 4.8 MB θ and gradients and two
 * workers on 2 cores, θ fetches took 6.8–6.9 ms a step and pushes 7.9–8.4 ms that way, against 11.7–13.3 and
 * 22.1–22.8 through a TCP socket and Redis, whose CPU the workers' compute needs too (README, Benchmark). Everything else (BullMQ's jobs, the order of results in the list, expiry)
 * is as before, so the run's bits are the same.
 *
 * - The coordinator (`own`: its SharedMemoryDir) writes θ and replica states of at least MIN_SHARED_BYTES into
 *   slots there and SETs pointers; unlink() hands a key's slot back. A result popped as a pointer is read from
 *   its slot, which is then handed back to its worker.
 * - A worker follows a θ pointer when the directory is there and is this user's (checkSharedDir); having read θ
 *   from it, it writes its results there too. When the directory is not there, get() throws a
 *   SharedMemoryUnreachableError (its message starts with SHM_UNREACHABLE): the coordinator then calls fallBack()
 *   and writes θ again, through Redis.
 * - Without shared memory (no `own`, nothing followed yet) it is the inner store, unchanged.
 */
export class SharedMemoryTensors implements TensorStore {
  private readonly paramSlots?: SlotWriter;
  private readonly slotOf = new Map<string, string>(); // key → the slot holding its value
  private inlineOnly = false;
  private resultSlots?: SlotWriter; // a worker's, once it has read θ from a directory
  private readonly dirs = new Map<string, ReturnType<typeof checkSharedDir>>();

  constructor(
    private readonly inner: TensorStore,
    private readonly own?: SharedMemoryDir,
    private readonly minBytes = MIN_SHARED_BYTES,
  ) {
    if (own) this.paramSlots = new SlotWriter(own.path, 'p', PARAM_SLOTS);
  }

  /** Whether θ still goes through shared memory (see fallBack). */
  get sharing(): boolean {
    return this.paramSlots !== undefined && !this.inlineOnly;
  }

  /**
   * From now on θ and states go through Redis as they are, and a key holding a pointer reads as missing (so that
   * the caller writes it again); true when this changed anything. Results keep coming through shared memory from
   * the workers that can open it.
   */
  fallBack(): boolean {
    const changed = this.sharing;
    this.inlineOnly = true;
    return changed;
  }

  async set(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    this.release(key);
    if (this.paramSlots && this.own && !this.inlineOnly && bytes.byteLength >= this.minBytes) {
      const slot = this.paramSlots.write([bytes]);
      if (slot !== undefined) {
        this.slotOf.set(key, slot);
        return this.inner.set(key, encodePointer({ dir: this.own.path, slot, length: bytes.byteLength }), ttlMs);
      }
    }
    return this.inner.set(key, bytes, ttlMs);
  }

  async unlink(key: string): Promise<void> {
    this.release(key);
    return this.inner.unlink(key);
  }

  async get(key: string, into: (length: number) => Uint8Array | 'skip'): Promise<Uint8Array | SkippedBulk | null> {
    const small = new SmallValue(into);
    const reply = await this.inner.get(key, small.sink);
    const pointer = small.pointer(reply);
    if (!pointer) return small.resolve(reply);
    if (this.own) {
      if (this.inlineOnly) return null; // written again, through Redis
      return this.readOwn(pointer, into, `${key}: `, false);
    }
    const target = into(pointer.length);
    if (target === 'skip') return new SkippedBulk(pointer.length);
    const state = this.dirState(pointer.dir);
    if (state === 'absent' || state === 'foreign') {
      const why = state === 'absent' ? 'another machine or container' : 'another user’s directory';
      throw new SharedMemoryUnreachableError(
        `${SHM_UNREACHABLE} ${key} is in ${pointer.dir} on the coordinator's machine, which this worker cannot open ` +
          `(${why}): the coordinator sends it through Redis instead`,
      );
    }
    if (state === 'refused')
      throw new InvalidMessageError(`${key}: a pointer to ${JSON.stringify(pointer.dir)}, not a gradq directory of this user`);
    try {
      readSlot(pointer.dir, pointer.slot, pointer.length, target);
    } catch (e) {
      throw new Error(`${key}: ${(e as Error).message} (replaced by a newer step's, or the run ended)`);
    }
    if (this.resultSlots?.dir !== pointer.dir) this.resultSlots = new SlotWriter(pointer.dir, 'r', RESULT_SLOTS);
    return target.subarray(0, pointer.length);
  }

  async rpushExpire(key: string, bytes: Uint8Array, ttlMs: number): Promise<void> {
    if (this.resultSlots && bytes.byteLength >= this.minBytes) {
      const slot = this.resultSlots.write([bytes]);
      if (slot !== undefined) {
        try {
          return await this.inner.rpushExpire(key, encodePointer({ dir: this.resultSlots.dir, slot, length: bytes.byteLength }), ttlMs);
        } catch (e) {
          // The slot back, so that pushes tried again do not use up this worker's slots; a pointer that did reach
          // the list (its reply lost) then names a file that is gone, which the coordinator rejects.
          releaseSlot(this.resultSlots.dir, slot);
          throw e;
        }
      }
    }
    return this.inner.rpushExpire(key, bytes, ttlMs);
  }

  /**
   * BLPOP; a pointer is followed into this coordinator's own directory only. A pointer that cannot be followed
   * (elsewhere, gone, cut short) comes back as a SkippedBulk with its reason, which the caller rejects like any bad
   * message.
   */
  async blpop(key: string, timeoutS: number, into: (length: number) => Uint8Array | 'skip', graceMs?: number) {
    const small = new SmallValue(into);
    const reply = await this.inner.blpop(key, timeoutS, small.sink, graceMs);
    const pointer = small.pointer(reply);
    if (!pointer) return small.resolve(reply);
    return this.readOwn(pointer, into, '', true);
  }

  get ordered(): boolean {
    return this.inner.ordered;
  }

  announce(clock: string, fields: readonly string[], ttlMs: number): Promise<void> {
    return this.inner.announce(clock, fields, ttlMs);
  }

  awaitAnnounce(clock: string, afterId: string, blockMs: number, graceMs?: number): Promise<StreamEntry[] | null> {
    return this.inner.awaitAnnounce(clock, afterId, blockMs, graceMs);
  }

  quit(): Promise<void> {
    return this.inner.quit();
  }

  disconnect(): void {
    this.inner.disconnect();
  }

  /** A pointer into the coordinator's own directory, read; its slot handed back to its worker when `release`. */
  private readOwn(pointer: ShmPointer, into: (length: number) => Uint8Array | 'skip', what: string, release: boolean) {
    if (!this.own || pointer.dir !== this.own.path) {
      return new SkippedBulk(pointer.length, `${what}a pointer to ${JSON.stringify(pointer.dir.slice(0, 100))}, not this run's directory`);
    }
    try {
      const target = into(pointer.length);
      if (target === 'skip') return new SkippedBulk(pointer.length);
      readSlot(pointer.dir, pointer.slot, pointer.length, target);
      return target.subarray(0, pointer.length);
    } catch (e) {
      return new SkippedBulk(pointer.length, `${what}${(e as Error).message}`);
    } finally {
      if (release) releaseSlot(pointer.dir, pointer.slot);
    }
  }

  private release(key: string): void {
    const slot = this.slotOf.get(key);
    if (slot === undefined || !this.own) return;
    releaseSlot(this.own.path, slot);
    this.slotOf.delete(key);
  }

  private dirState(dir: string): ReturnType<typeof checkSharedDir> {
    let state = this.dirs.get(dir);
    if (state === undefined || state === 'absent') {
      state = checkSharedDir(dir);
      if (this.dirs.size > 16) this.dirs.clear(); // directories come from outside: keep only a few
      this.dirs.set(dir, state);
    }
    return state;
  }
}

/**
 * A value read through a sink that keeps values of pointer size in a buffer of their own (they may be pointers) and
 * hands longer ones to the caller's `into` as they are.
 */
class SmallValue {
  private mine: Uint8Array | undefined;

  constructor(private readonly into: (length: number) => Uint8Array | 'skip') {}

  readonly sink = (length: number): Uint8Array | 'skip' => {
    if (length > MAX_POINTER_BYTES) return this.into(length);
    this.mine = new Uint8Array(length);
    return this.mine;
  };

  /** The pointer the reply is, if it is one. */
  pointer(reply: Uint8Array | SkippedBulk | null): ShmPointer | undefined {
    return reply instanceof Uint8Array && this.mine !== undefined && reply.buffer === this.mine.buffer ? decodePointer(reply) : undefined;
  }

  /** A reply that is not a pointer, in the caller's buffer as if it had come straight there. */
  resolve(reply: Uint8Array | SkippedBulk | null): Uint8Array | SkippedBulk | null {
    if (!(reply instanceof Uint8Array) || this.mine === undefined || reply.buffer !== this.mine.buffer) return reply;
    const target = this.into(reply.byteLength);
    if (target === 'skip') return new SkippedBulk(reply.byteLength);
    target.set(reply);
    return target.subarray(0, reply.byteLength);
  }
}
