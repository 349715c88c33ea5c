import { ConfigError } from '@gradq/nn';

/**
 * How a run synchronises its K shards: `sync` (one optimizer step per global batch from the shards' summed
 * gradient, today's behaviour) or `local` (local SGD, DiLoCo-style: each shard is a replica that runs `h` inner
 * steps from the round's parameters, then an outer optimizer applies the mean of the replicas' deltas).
 */
export type SyncMode = { kind: 'sync' } | { kind: 'local'; h: number };

/** Parses `sync` or `local:H` (H a whole number >= 1). */
export function parseSyncMode(spec: string): SyncMode {
  if (spec === 'sync') return { kind: 'sync' };
  const m = /^local:(.*)$/.exec(spec);
  if (m) {
    const h = /^[0-9]+$/.test(m[1]) ? Number(m[1]) : Number.NaN;
    if (Number.isSafeInteger(h) && h >= 1) return { kind: 'local', h };
    throw new ConfigError(`sync mode ${spec}: H "${m[1]}" is not a whole number >= 1 (e.g. local:8)`, { about: 'sync' });
  }
  throw new ConfigError(`unknown sync mode "${spec}" (use sync or local:H, e.g. local:8)`, { about: 'sync' });
}

/** The name of a sync mode as parseSyncMode reads it. */
export function syncModeName(mode: SyncMode): string {
  return mode.kind === 'sync' ? 'sync' : `local:${mode.h}`;
}
