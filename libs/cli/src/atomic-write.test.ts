import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkWritableTarget, removeStaleTempFiles, writeFileAtomic } from './atomic-write.js';
import { UsageError } from './usage-error.js';

const tmp = mkdtempSync(join(tmpdir(), 'gradq-atomic-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A pid that no process has: one that just exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
}

describe('checkWritableTarget', () => {
  it('accepts a new file in an existing folder', () => expect(() => checkWritableTarget('--out', join(tmp, 'm.gradq'))).not.toThrow());
  it('refuses a missing folder', () =>
    expect(() => checkWritableTarget('--out', join(tmp, 'nope', 'm.gradq'))).toThrow(/folder .*nope does not exist/));
  it('refuses a target that is a folder, before any work', () => {
    mkdirSync(join(tmp, 'adir'));
    expect(() => checkWritableTarget('--out', join(tmp, 'adir'))).toThrow(UsageError);
    expect(() => checkWritableTarget('--out', join(tmp, 'adir'))).toThrow(/adir: is a folder \(name a file in it/);
  });
  it.skipIf(process.getuid?.() === 0)('refuses a folder this user cannot write to', () => {
    const ro = join(tmp, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    expect(() => checkWritableTarget('--out', join(ro, 'm.gradq'))).toThrow(/is not writable by this user/);
  });
});

describe('removeStaleTempFiles', () => {
  it('removes the temporary files of dead processes beside the file, and keeps the live ones and everything else', () => {
    const dir = join(tmp, 'ckpt');
    mkdirSync(dir);
    const file = join(dir, 'checkpoint.gradq');
    const dead = `checkpoint.gradq.tmp-${deadPid()}-1700000000000`;
    const live = `checkpoint.gradq.tmp-${process.pid}-${Date.now()}`;
    const ownEarlier = `checkpoint.gradq.tmp-${process.pid}-1700000000001`; // this pid, before this process: PID 1 in a container
    for (const name of [dead, live, ownEarlier, 'checkpoint.gradq', 'other.gradq.tmp-1-2', 'checkpoint.gradq.tmp-x'])
      writeFileSync(join(dir, name), 'x');
    expect(removeStaleTempFiles(file).sort()).toEqual([dead, ownEarlier].sort());
    expect(readdirSync(dir).sort()).toEqual(['checkpoint.gradq', 'checkpoint.gradq.tmp-x', live, 'other.gradq.tmp-1-2'].sort());
  });

  it('returns nothing for a folder that does not exist', () => expect(removeStaleTempFiles(join(tmp, 'none', 'f'))).toEqual([]));
});

describe('writeFileAtomic', () => {
  it('writes the bytes and leaves no temporary file', () => {
    const file = join(tmp, 'w.bin');
    writeFileAtomic(file, Buffer.from('hello'));
    expect(existsSync(file)).toBe(true);
    expect(readdirSync(tmp).filter((n) => n.startsWith('w.bin.tmp-'))).toEqual([]);
  });

  it('hands the bytes read back from disk to verify before they replace the file', () => {
    const file = join(tmp, 'v.bin');
    const seen: string[] = [];
    writeFileAtomic(file, Buffer.from('checked'), { verify: (b) => void seen.push(Buffer.from(b).toString()) });
    expect(seen).toEqual(['checked']);
    expect(readFileSync(file, 'utf8')).toBe('checked');
  });

  it('leaves the file as it was, and no temporary file, when verify throws', () => {
    const file = join(tmp, 'bad.bin');
    writeFileSync(file, 'good');
    const refuse = (): void => {
      throw new Error('does not check out');
    };
    expect(() => writeFileAtomic(file, Buffer.from('new'), { verify: refuse, keepPrevious: `${file}.prev` })).toThrow('does not check out');
    expect(readFileSync(file, 'utf8')).toBe('good');
    expect(existsSync(`${file}.prev`)).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.startsWith('bad.bin.'))).toEqual([]);
  });

  it('keeps the file it replaces as the previous copy, replacing the one before; none when there was no file', () => {
    const dir = join(tmp, 'prev');
    mkdirSync(dir);
    const file = join(dir, 'c.bin');
    const prev = `${file}.prev`;
    writeFileAtomic(file, Buffer.from('one'), { keepPrevious: prev });
    expect(existsSync(prev)).toBe(false);
    writeFileAtomic(file, Buffer.from('two'), { keepPrevious: prev });
    expect([readFileSync(file, 'utf8'), readFileSync(prev, 'utf8')]).toEqual(['two', 'one']);
    writeFileAtomic(file, Buffer.from('three'), { keepPrevious: prev });
    expect([readFileSync(file, 'utf8'), readFileSync(prev, 'utf8')]).toEqual(['three', 'two']);
    expect(statSync(prev).ino).not.toBe(statSync(file).ino); // a file of its own, not a second name of the new one
    expect(readdirSync(dir).sort()).toEqual(['c.bin', 'c.bin.prev']);
  });
});
