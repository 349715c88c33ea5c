import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '@gradq/cli';
import type { ClusterCounters } from '../cluster/step-gather.js';
import { RunState, type EpochRow, type RunInfo, type StepRow, type WorkerRow } from './run-state.js';

/** The metrics log in a --log-dir: one JSON object per line. */
export const METRICS_LOG_FILE = 'metrics.jsonl';

/**
 * Lines of the log: `{"kind":"run","info":…}` first, then `{"kind":"step",…StepRow}` per applied step and
 * `{"kind":"epoch",…EpochRow}` per epoch, and `{"kind":"end","status":…,"workers":[…],"counters":…}` last.
 */
type LogLine =
  | { kind: 'run'; info: RunInfo }
  | ({ kind: 'step' } & StepRow)
  | ({ kind: 'epoch' } & EpochRow)
  | { kind: 'end'; status: 'finished' | 'failed'; workers: WorkerRow[]; counters: ClusterCounters | null };

/**
 * Writes a run's rows to DIR/metrics.jsonl as they come (a buffered stream: a step costs one small write, no
 * syscall). A resumed run appends: its steps from the checkpoint on replace the interrupted run's when read back.
 */
export class MetricsLog {
  private readonly out: WriteStream;
  readonly file: string;

  constructor(dir: string, state: RunState, append: boolean) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new UsageError(`--log-dir ${dir}: cannot create it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    this.file = join(dir, METRICS_LOG_FILE);
    this.out = createWriteStream(this.file, { flags: append ? 'a' : 'w' });
    this.out.on('error', () => undefined); // reported by close()
    this.write({ kind: 'run', info: state.info });
    state.onRow((row, kind) => this.write({ kind, ...row } as LogLine));
  }

  private write(line: LogLine): void {
    this.out.write(`${JSON.stringify(line)}\n`);
  }

  /** Writes the end line and closes the file. */
  async close(state: RunState): Promise<void> {
    const status = state.status === 'failed' ? 'failed' : 'finished';
    this.write({ kind: 'end', status, workers: state.workers(), counters: state.counters() ?? null });
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.end(() => resolve());
    });
  }
}

const STEP_NUMBERS = ['step', 'epoch', 'samples', 'loss', 'accuracy', 'lr', 'ms', 'optimizerMs', 'time'] as const;
const STEP_OPTIONAL = ['publishMs', 'queueWaitMs', 'fetchMs', 'computeMs', 'uploadMs', 'aggregateMs'] as const;
const EPOCH_NUMBERS = ['epoch', 'step', 'trainLoss', 'trainAccuracy', 'testLoss', 'testAccuracy', 'lr', 'samplesPerS'] as const;
const COUNTERS = ['duplicates', 'rejected', 'recomputed', 'failed'] as const;

/** A finished run read back from DIR/metrics.jsonl, every line checked; the state of `gradq dashboard`. */
export function readMetricsLog(dir: string): RunState {
  const file = join(dir, METRICS_LOG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `--log-dir ${dir}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); write one with gradq train --log-dir ${dir}`,
    );
  }
  let info: RunInfo | undefined;
  const steps: StepRow[] = [];
  const epochs: EpochRow[] = [];
  let end: Extract<LogLine, { kind: 'end' }> | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const bad = (why: string): UsageError => new UsageError(`${file}:${i + 1}: ${why} (a metrics log written by gradq train --log-dir?)`);
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(lines[i]) as Record<string, unknown>;
    } catch {
      // The last line of a killed run may be cut short.
      if (i >= lines.length - 2) break;
      throw bad('not JSON');
    }
    if (typeof line !== 'object' || line === null) throw bad('not a JSON object');
    const numbers = (keys: readonly string[], optional: readonly string[] = []): void => {
      for (const k of keys) if (typeof line[k] !== 'number') throw bad(`"${k}" is ${JSON.stringify(line[k])}, not a number`);
      for (const k of optional) if (line[k] !== undefined && typeof line[k] !== 'number') throw bad(`"${k}" is not a number`);
    };
    if (line.kind === 'run') {
      info = checkInfo(line.info, bad);
    } else if (line.kind === 'step') {
      numbers(STEP_NUMBERS, STEP_OPTIONAL);
      const row = pick(line, [...STEP_NUMBERS, ...STEP_OPTIONAL]) as unknown as StepRow;
      // A resumed run redoes the steps after its checkpoint: the later rows replace the earlier ones.
      while (steps.length > 0 && steps[steps.length - 1].step >= row.step) steps.pop();
      while (epochs.length > 0 && epochs[epochs.length - 1].step > row.step) epochs.pop();
      steps.push(row);
    } else if (line.kind === 'epoch') {
      numbers(EPOCH_NUMBERS);
      epochs.push(pick(line, EPOCH_NUMBERS) as unknown as EpochRow);
    } else if (line.kind === 'end') {
      if (!Array.isArray(line.workers)) throw bad('"workers" is not a list');
      const workers = line.workers.map((w: unknown) => checkWorker(w, bad));
      const c = line.counters as Record<string, unknown> | null;
      if (c !== null && (typeof c !== 'object' || COUNTERS.some((k) => typeof c[k] !== 'number')))
        throw bad('"counters" are not four numbers');
      end = {
        kind: 'end',
        status: line.status === 'failed' ? 'failed' : 'finished',
        workers,
        counters: c === null ? null : (pick(c, COUNTERS) as unknown as ClusterCounters),
      };
    } else throw bad(`unknown kind ${JSON.stringify(line.kind)}`);
  }
  if (info === undefined) throw new UsageError(`${file}: no "run" line: not a metrics log written by gradq train --log-dir`);
  const counters = end?.counters ?? undefined;
  const finalWorkers = end?.workers ?? [];
  const state = new ReplayState({ ...info, replay: true }, finalWorkers, counters);
  for (const r of steps) state.addStep(r);
  for (const e of epochs) state.addEpoch(e);
  state.finish(end?.status ?? 'failed');
  return state;
}

/** A finished run's state: its workers and counters as they were at the end. */
class ReplayState extends RunState {
  constructor(
    info: RunInfo,
    private readonly finalWorkers: WorkerRow[],
    private readonly finalCounters: ClusterCounters | undefined,
  ) {
    super(info);
  }
  override workers(): WorkerRow[] {
    return this.finalWorkers;
  }
  override counters(): ClusterCounters | undefined {
    return this.finalCounters;
  }
}

function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function checkInfo(v: unknown, bad: (why: string) => Error): RunInfo {
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || typeof o.totalSteps !== 'number' || typeof o.config !== 'object' || o.config === null) {
    throw bad('"info" lacks totalSteps or config');
  }
  const config: RunInfo['config'] = {};
  for (const [k, value] of Object.entries(o.config as Record<string, unknown>)) {
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) config[k] = value as string | number | boolean | null;
  }
  return { mode: o.mode === 'local' ? 'local' : 'cluster', totalSteps: o.totalSteps, config };
}

function checkWorker(v: unknown, bad: (why: string) => Error): WorkerRow {
  const w = v as Record<string, unknown> | null;
  if (typeof w !== 'object' || w === null || typeof w.name !== 'string' || typeof w.shards !== 'number')
    throw bad('a worker lacks name or shards');
  const state = w.state === 'working' || w.state === 'idle' || w.state === 'lost' ? w.state : 'idle';
  return {
    name: w.name, host: typeof w.host === 'string' ? w.host : '', shards: w.shards,
    meanComputeMs: typeof w.meanComputeMs === 'number' ? w.meanComputeMs : 0, lastSeen: typeof w.lastSeen === 'number' ? w.lastSeen : 0,
    state: state === 'working' ? 'idle' : state,
  }; // prettier-ignore
}
