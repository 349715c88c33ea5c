import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, ftruncateSync, lstatSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A slot file's name: what it holds ('p': θ or a replica's state, written by the coordinator; 'r': a worker's result
 * message), its writer's token, the slot's number, and either the sequence number of the message in it or 'free'.
 */
export const SLOT_NAME = /^[pr]\.[0-9a-f]{8}\.[0-9]{1,3}\.[0-9]{1,15}$/;

export type SlotKind = 'p' | 'r';

/**
 * Writes messages into files of a shared-memory directory that it reuses ("slots"): on tmpfs, overwriting a file
 * costs about a fifth of making a new one of the same size (4.8 MB: 0.5 ms against 2.1 ms here; a new file's pages
 * are allocated and zeroed first, and freed again when the reader unlinks it).
 *
 * A slot is taken by renaming it from `….free` to `….<seq>` and handed back by whoever is done with it renaming
 * it to `….free` again (releaseSlot): a rename is atomic, so a slot is never written while its reader holds it,
 * and a pointer to a message already replaced names a file that is gone (ENOENT), never the next message's bytes.
 * A writer has at most maxSlots; when all are taken, write() returns undefined and the caller sends its bytes
 * another way (through Redis).
 */
export class SlotWriter {
  private readonly token = randomBytes(4).toString('hex');
  private readonly sizes: number[] = []; // bytes each slot file holds, by slot
  private next = 0; // the slot tried first
  private seq = 0;

  constructor(
    readonly dir: string,
    private readonly kind: SlotKind,
    private readonly maxSlots: number,
  ) {}

  /** Writes `parts` one after another into a slot; the slot's name, or undefined (no slot free, or the write failed). */
  write(parts: ReadonlyArray<Uint8Array>): string | undefined {
    const taken = this.take();
    if (!taken) return undefined;
    const { slot, name } = taken;
    let fd: number | undefined;
    try {
      fd = openSync(join(this.dir, name), 'r+');
      let at = 0;
      for (const part of parts) {
        for (let done = 0; done < part.byteLength;) done += writeSync(fd, part, done, part.byteLength - done, at + done);
        at += part.byteLength;
      }
      if (this.sizes[slot] > at) ftruncateSync(fd, at);
      this.sizes[slot] = at;
      return name;
    } catch {
      releaseSlot(this.dir, name); // ENOSPC, or the directory is gone (the run ended)
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  private take(): { slot: number; name: string } | undefined {
    const seq = ++this.seq;
    const count = this.sizes.length;
    for (let i = 0; i < count; i++) {
      const slot = (this.next + i) % count;
      const name = `${this.kind}.${this.token}.${slot}.${seq}`;
      try {
        renameSync(join(this.dir, freeName(this.kind, this.token, slot)), join(this.dir, name));
        this.next = (slot + 1) % count;
        return { slot, name };
      } catch {
        // still held by its reader
      }
    }
    if (count >= this.maxSlots) return undefined;
    const name = `${this.kind}.${this.token}.${count}.${seq}`;
    try {
      closeSync(openSync(join(this.dir, name), 'wx', 0o600));
    } catch {
      return undefined;
    }
    this.sizes.push(0);
    return { slot: count, name };
  }
}

/** Hands a slot back to its writer (nothing happens when it is gone). */
export function releaseSlot(dir: string, name: string): void {
  const [kind, token, slot] = name.split('.');
  try {
    renameSync(join(dir, name), join(dir, freeName(kind, token, Number(slot))));
  } catch {
    // gone already: the directory was removed, or the message was released before
  }
}

/**
 * Reads the first `length` bytes of slot `name` into `into`. Throws when the slot is gone or holds fewer bytes
 * (the message is stale: its writer has reused the slot; or the file was cut short), and when it was handed back
 * while being read: a writer renames a slot before it writes into it, so a slot still under its name after the
 * read was not written during it (an open file would otherwise let a reader see a newer message's bytes).
 */
export function readSlot(dir: string, name: string, length: number, into: Uint8Array): void {
  const path = join(dir, name);
  const fd = openSync(path, 'r');
  try {
    const stats = fstatSync(fd);
    if (stats.size < length) throw new Error(`${name} holds ${stats.size} bytes, its pointer says ${length}`);
    for (let done = 0; done < length;) {
      const n = readSync(fd, into, done, length - done, done);
      if (n === 0) throw new Error(`${name} ended after ${done} of ${length} bytes`);
      done += n;
    }
    if (lstatSync(path, { throwIfNoEntry: false })?.ino !== stats.ino) throw new Error(`${name} was replaced while being read`);
  } finally {
    closeSync(fd);
  }
}

function freeName(kind: string, token: string, slot: number): string {
  return `${kind}.${token}.${slot}.free`;
}
