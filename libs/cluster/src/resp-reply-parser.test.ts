import { describe, expect, it } from 'vitest';
import { RespError, RespProtocolError, RespReplyParser, SkippedBulk, type BulkSink, type RespValue } from './resp-reply-parser.js';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/** Parses `stream` fed in the given chunks; `sinks` gives each reply's bulk sink, in order. */
function parse(chunks: Uint8Array[], sinks: Array<BulkSink | undefined> = []): RespValue[] {
  const replies: RespValue[] = [];
  const parser = new RespReplyParser(
    () => sinks[replies.length],
    (v) => replies.push(v),
  );
  for (const c of chunks) parser.feed(c);
  return replies;
}

/** Every way of cutting `stream` in two, and one byte at a time: the replies must not depend on the chunks. */
function everySplit(stream: Uint8Array): Uint8Array[][] {
  const splits: Uint8Array[][] = [[stream], Array.from(stream, (b) => Uint8Array.of(b))];
  for (let i = 1; i < stream.length; i++) splits.push([stream.subarray(0, i), stream.subarray(i)]);
  return splits;
}

const plain = (v: RespValue): unknown =>
  v instanceof Uint8Array
    ? Buffer.from(v).toString('latin1')
    : Array.isArray(v)
      ? v.map(plain)
      : v instanceof RespError
        ? `ERR:${v.message}`
        : v;

describe('RespReplyParser', () => {
  it('parses every RESP2 type, however the stream is cut into chunks', () => {
    const stream = bytes(
      '+OK\r\n-WRONGTYPE Operation against a key\r\n:42\r\n:-7\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n' +
        '*2\r\n$3\r\nkey\r\n*2\r\n:1\r\n$1\r\n\n\r\n',
    );
    const expected = ['OK', 'ERR:WRONGTYPE Operation against a key', 42, -7, 'he\r\no', '', null, null, [], ['key', [1, '\n']]];
    for (const chunks of everySplit(stream)) expect(parse(chunks).map(plain)).toEqual(expected);
  });

  it('keeps no reference to a chunk: the reader may read the next chunk into the same memory', () => {
    const stream = bytes('+OK\r\n*2\r\n:12345\r\n$4\r\nabcd\r\n-ERR wrong\r\n');
    for (let cut = 1; cut < stream.length; cut++) {
      const memory = new Uint8Array(stream.length);
      const replies: RespValue[] = [];
      const parser = new RespReplyParser(
        () => undefined,
        (v) => replies.push(v),
      );
      memory.set(stream.subarray(0, cut));
      parser.feed(memory.subarray(0, cut));
      memory.fill(0x21).set(stream.subarray(cut));
      parser.feed(memory.subarray(0, stream.length - cut));
      expect(replies.map(plain)).toEqual(['OK', [12345, 'abcd'], 'ERR:ERR wrong']);
    }
  });

  it('lands a bulk string in the buffer its sink gives, told the bulk index within the reply and the length', () => {
    const target = new Uint8Array(16).fill(9);
    const asked: Array<[number, number]> = [];
    const sink: BulkSink = (index, length) => {
      asked.push([index, length]);
      return index === 1 ? target : undefined;
    };
    const stream = bytes('*2\r\n$3\r\nkey\r\n$6\r\nvalue!\r\n');
    for (const chunks of everySplit(stream)) {
      asked.length = 0;
      const [reply] = parse(chunks, [sink]) as RespValue[][];
      expect(reply[1]).toBeInstanceOf(Uint8Array);
      expect((reply[1] as Uint8Array).buffer).toBe(target.buffer); // a view of the sink's buffer, not a copy
      expect(plain(reply)).toEqual(['key', 'value!']);
      expect(target[6]).toBe(9); // nothing written past the value
      expect(asked).toEqual([
        [0, 3],
        [1, 6],
      ]);
    }
  });

  it('discards a bulk string its sink skips, keeping only its length, and goes on with the next reply', () => {
    const stream = bytes('$10\r\n0123456789\r\n:5\r\n');
    for (const chunks of everySplit(stream)) {
      const replies = parse(chunks, [() => 'skip']);
      expect(replies[0]).toEqual(new SkippedBulk(10));
      expect(replies[1]).toBe(5);
    }
  });

  it('asks each reply its own sink and counts bulk indexes from 0 in each', () => {
    const indexes: number[] = [];
    const sink: BulkSink = (index) => {
      indexes.push(index);
      return undefined;
    };
    parse([bytes('$1\r\na\r\n*2\r\n$1\r\nb\r\n$1\r\nc\r\n')], [sink, sink]);
    expect(indexes).toEqual([0, 0, 1]);
  });

  it.each([
    ['an unknown type byte', '!oops\r\n', 'reply starts with "!oops"'],
    ['a line without \\r', '+OK\n', 'does not end in \\r\\n'],
    ['a bulk not followed by \\r\\n', '$2\r\nabX\r\n', 'bulk string of 2 bytes not followed by \\r\\n'],
    ['a length that is not a number', '$1x\r\n', 'bulk length "1x" is not an integer'],
    ['a negative length other than -1', '*-2\r\n', 'array length -2'],
    ['a bulk larger than Redis allows', '$600000000\r\n', 'bulk length 600000000'],
  ])('refuses %s with a RespProtocolError', (_what, stream, message) => {
    expect(() => parse([bytes(stream)])).toThrow(RespProtocolError);
    expect(() => parse([bytes(stream)])).toThrow(message);
  });

  it('refuses a header line that never ends', () => {
    const parser = new RespReplyParser(
      () => undefined,
      () => undefined,
    );
    parser.feed(bytes('+'));
    expect(() => parser.feed(new Uint8Array(70 * 1024).fill(0x41))).toThrow('reply line longer than 65536 bytes');
  });
});
