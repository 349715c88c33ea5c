/**
 * A streaming parser of Redis replies (RESP2) that can land a bulk string straight in a buffer its reader
 * chooses: a 400 KB θ or gradient arrives in several socket chunks, and each chunk is copied once, into place,
 * instead of being gathered and joined and copied again.
 *
 *   +OK\r\n            simple string   → string
 *   -ERR …\r\n         error           → RespError (the reply's reader throws it)
 *   :12\r\n            integer         → number
 *   $5\r\nhello\r\n    bulk string     → Uint8Array (or a SkippedBulk), $-1 → null
 *   *2\r\n…            array           → RespValue[], *-1 → null
 */
export type RespValue = string | number | Uint8Array | SkippedBulk | RespError | null | RespValue[];

/** An error reply from the server. */
export class RespError extends Error {
  override readonly name = 'RespError';
}

/**
 * A bulk string the reader chose not to keep (too large): only its length is known. `reason`: why else it could
 * not be read (a shared-memory pointer that could not be followed; see SharedMemoryTensors).
 */
export class SkippedBulk {
  constructor(
    readonly length: number,
    readonly reason?: string,
  ) {}
}

/** Bytes that are not RESP: the connection cannot be trusted any further. */
export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
}

/**
 * Where the reply being parsed puts its bulk strings: called with the bulk's index within the reply (0 for a
 * GET's value; 0 and 1 for BLPOP's key and value) and its length; returns a buffer of at least that length to
 * fill (its first `length` bytes), 'skip' to discard the bytes, or undefined for a new buffer.
 */
export type BulkSink = (index: number, length: number) => Uint8Array | 'skip' | undefined;

/** Longest header line accepted (a type byte, a number or a short status/error text). */
const MAX_LINE = 64 * 1024;
/** Largest bulk string accepted at all (Redis' own proto-max-bulk-len default). */
const MAX_BULK = 512 * 1024 * 1024;

interface Frame {
  items: RespValue[];
  length: number;
}

export class RespReplyParser {
  private line: Uint8Array[] = [];
  private lineLength = 0;
  /** The bulk string being read: `filled` counts its bytes, then its trailing \r\n (up to length + 2). */
  private bulk: { target: Uint8Array | undefined; length: number; filled: number } | undefined;
  private readonly stack: Frame[] = [];
  private bulkIndex = 0;

  /**
   * `sink` is asked, for the reply currently being parsed, where its bulk strings go; `onReply` receives each
   * complete top-level reply, in order.
   */
  constructor(
    private readonly sink: () => BulkSink | undefined,
    private readonly onReply: (value: RespValue) => void,
  ) {}

  /**
   * Parses a chunk of the stream; throws RespProtocolError on bytes that are not RESP. Keeps no reference to the
   * chunk once it returns, so the caller may read the next chunk into the same memory.
   */
  feed(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length) {
      const b = this.bulk;
      if (b && b.filled < b.length) {
        const n = Math.min(b.length - b.filled, chunk.length - pos);
        b.target?.set(chunk.subarray(pos, pos + n), b.filled);
        b.filled += n;
        pos += n;
      } else if (b) {
        const expected = b.filled === b.length ? 0x0d : 0x0a;
        if (chunk[pos] !== expected) throw new RespProtocolError(`bulk string of ${b.length} bytes not followed by \\r\\n`);
        pos++;
        if (++b.filled === b.length + 2) {
          this.bulk = undefined;
          this.value(b.target ? b.target.subarray(0, b.length) : new SkippedBulk(b.length));
        }
      } else {
        const nl = chunk.indexOf(0x0a, pos);
        const end = nl < 0 ? chunk.length : nl + 1;
        this.lineLength += end - pos;
        if (this.lineLength > MAX_LINE) throw new RespProtocolError(`reply line longer than ${MAX_LINE} bytes`);
        // A line cut by the chunk's end is copied: the reader may reuse the chunk's memory for the next one.
        this.line.push(nl < 0 ? new Uint8Array(chunk.subarray(pos, end)) : chunk.subarray(pos, end));
        pos = end;
        if (nl >= 0) this.header(this.takeLine());
      }
    }
  }

  private takeLine(): string {
    const parts = this.line;
    this.line = [];
    this.lineLength = 0;
    const text = Buffer.concat(parts).toString('latin1');
    if (!text.endsWith('\r\n')) throw new RespProtocolError(`reply line ${JSON.stringify(text.slice(0, 40))} does not end in \\r\\n`);
    return text.slice(0, -2);
  }

  private header(line: string): void {
    const type = line[0];
    const rest = line.slice(1);
    switch (type) {
      case '+':
        return this.value(rest);
      case '-':
        return this.value(new RespError(rest));
      case ':':
        return this.value(this.integer(rest, 'integer'));
      case '$': {
        const length = this.integer(rest, 'bulk length');
        if (length === -1) return this.value(null);
        if (length < 0 || length > MAX_BULK) throw new RespProtocolError(`bulk length ${length}`);
        const chosen = this.sink()?.(this.bulkIndex++, length);
        const target = chosen === 'skip' ? undefined : (chosen ?? Buffer.allocUnsafe(length));
        if (target && target.length < length) throw new Error(`bulk sink gave ${target.length} bytes for a bulk of ${length}`);
        this.bulk = { target, length, filled: 0 };
        return;
      }
      case '*': {
        const length = this.integer(rest, 'array length');
        if (length === -1) return this.value(null);
        if (length < 0) throw new RespProtocolError(`array length ${length}`);
        if (length === 0) return this.value([]);
        this.stack.push({ items: [], length });
        return;
      }
      default:
        throw new RespProtocolError(`reply starts with ${JSON.stringify(line.slice(0, 40))}, not one of + - : $ *`);
    }
  }

  private integer(text: string, what: string): number {
    if (!/^-?\d{1,15}$/.test(text)) throw new RespProtocolError(`${what} ${JSON.stringify(text.slice(0, 40))} is not an integer`);
    return Number(text);
  }

  /** A complete value: an item of the innermost open array, or a whole reply. */
  private value(v: RespValue): void {
    for (;;) {
      const top = this.stack.at(-1);
      if (!top) {
        this.bulkIndex = 0;
        this.onReply(v);
        return;
      }
      top.items.push(v);
      if (top.items.length < top.length) return;
      this.stack.pop();
      v = top.items;
    }
  }
}
