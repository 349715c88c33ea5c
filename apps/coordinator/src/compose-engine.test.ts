import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { killLeftoverChildren, lastJson, runCli, SHARED_DATA } from './testing/run-cli.js';

// docker-compose.yml and the Dockerfile on a real Docker engine: Debian's docker.io (engine 20.10) and
// docker-compose (v1.29), the engine started here when none runs (dockerd --storage-driver=vfs), base images built
// from Debian packages (tools/compose-engine/base-images.sh: no registry to pull from), host networking only
// (tools/compose-engine/docker-compose.engine.yml says what it changes). The scenario of issue 12: up --build with
// 3 workers, one killed and one added, the coordinator killed and brought up again (resumes from its checkpoint),
// then stopped with SIGTERM (final checkpoint, exit 143) and up again: the run ends with the `--local` hash, the
// model lands in the `runs` volume and `run coordinator eval` reads it; down -v removes everything.
// Skipped, saying why, where no engine can be had (not root, or docker.io / docker-compose / debootstrap missing:
// .ci/run installs them).

const root = fileURLToPath(new URL('../../../', import.meta.url));
const tools = join(root, 'tools/compose-engine');
const overrideFile = join(tools, 'docker-compose.engine.yml');
// Debian's docker client (20.10) before any other on PATH, e.g. a newer one without buildx.
const PATH = ['/usr/bin', process.env.PATH ?? ''].join(delimiter);

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { ...process.env, PATH } }).status === 0;
}
function engineAnswers(): boolean {
  return spawnSync(join(tools, 'engine.sh'), ['status'], { env: { ...process.env, PATH } }).status === 0;
}

/** Why the test cannot run here, or undefined when it can. */
function whySkipped(): string | undefined {
  const missing = ['docker', 'docker-compose', 'debootstrap'].filter((c) => !onPath(c));
  if (missing.length > 0) return `${missing.join(', ')} not installed (apt-get install docker.io docker-compose debootstrap)`;
  if (engineAnswers()) return undefined;
  if (process.getuid?.() !== 0) return 'no Docker engine answers and only root can start one';
  if (!onPath('dockerd')) return 'no Docker engine answers and dockerd is not installed (apt-get install docker.io)';
  return undefined;
}
const skipped = whySkipped();
if (skipped) console.warn(`compose engine test SKIPPED: ${skipped}`);

const project = `gradq-engine-${randomBytes(3).toString('hex')}`;
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH,
  GRADQ_REDIS_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
  GRADQ_QUEUE: `${project}-queue`,
  GRADQ_ENGINE_DATA: SHARED_DATA,
};
// Compose v1 refuses host networking for a service that publishes ports ("network_mode is incompatible with
// port_bindings"), and an override file can add to `ports` but never remove: the test runs a copy of the user's
// file, written beside it (so that its relative paths stay the same), that differs only in having no `ports` under
// the coordinator (the dashboard published on the host's loopback; with host networking it is there as it is).
const userFile = `.docker-compose.engine-${project}.yml`;
function writeUserFileCopy(): void {
  // The document as written (its quoting kept: YAML 1.1, which compose reads, takes a bare `no` for false).
  const file = parseDocument(readFileSync(join(root, 'docker-compose.yml'), 'utf8'));
  file.deleteIn(['services', 'coordinator', 'ports']);
  writeFileSync(join(root, userFile), String(file));
}
/** The command prefix of the README's Docker section, plus the test's project and override (and the copy above). */
const compose = ['docker-compose', '-p', project, '-f', userFile, '-f', overrideFile];
let startedDockerd: string | undefined;
const timings: Record<string, number> = {};

function sh(cmd: string, args: readonly string[], timeoutMs = 600_000): string {
  return execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}
function run(cmd: string, args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const dc = (...args: string[]): string => sh(compose[0], [...compose.slice(1), ...args]);
const docker = (...args: string[]): string => sh('docker', args).trim();
function timed<T>(what: string, f: () => T): T {
  const start = Date.now();
  try {
    return f();
  } finally {
    timings[what] = (Date.now() - start) / 1000;
  }
}

/** Polls `check` once a second (each check runs docker commands) until it holds, or fails after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const containers = (service: string): string[] => dc('ps', '-q', service).split('\n').filter(Boolean);
const running = (id: string): boolean => docker('inspect', '-f', '{{.State.Running}}', id) === 'true';
const logsOf = (id: string): { stdout: string; stderr: string } => {
  const r = run('docker', ['logs', id]);
  return { stdout: r.stdout, stderr: r.stderr };
};
/** The highest epoch the coordinator has reported over all its runs (0 before the first). */
function epochReached(id: string): number {
  return Math.max(0, ...[...logsOf(id).stderr.matchAll(/epoch (\d+)\/\d+/g)].map((m) => Number(m[1])));
}

/** Image ids (short) of every step of this run's build: the cache of the next run. */
const thisBuild = new Set<string>();

/**
 * Removes the untagged images that earlier builds on the stand-in base images left (the gradq:local this build
 * replaced, the stages of earlier sources): vfs stores every layer in full, so each build with changed sources
 * leaves about 1 GB. Images on a real base image (no stand-in label) and the stages of this build are kept.
 */
function removeEarlierBuilds(): void {
  if (thisBuild.size === 0) return; // nothing built: nothing known to keep
  const dangling = run('docker', ['images', '-q', '--filter', 'dangling=true', '--filter', 'label=org.gradq.stand-in']);
  const stale = [...new Set(dangling.stdout.split('\n').filter(Boolean))].filter((id) => !thisBuild.has(id.slice(0, 12)));
  if (stale.length > 0) run('docker', ['image', 'rm', ...stale]);
  timings['images removed'] = stale.length;
}

/** The training flags of the override's coordinator, as `--local` on this host (data from SHARED_DATA). */
function localTrainArgs(): string[] {
  const override = parse(readFileSync(overrideFile, 'utf8')) as { services: { coordinator: { command: string[] } } };
  const [command, ...args] = override.services.coordinator.command;
  expect(command).toBe('train');
  const dropped = new Set(['--workers', '--shm', '--redis', '--queue', '--checkpoint', '--checkpoint-every', '--out']);
  const out: string[] = ['train', '--local', '--data-dir', SHARED_DATA];
  for (let i = 0; i < args.length; i++) {
    if (dropped.has(args[i])) i++;
    else if (args[i] !== '--resume') out.push(args[i]);
  }
  return out;
}

describe.skipIf(skipped !== undefined)('docker compose on a real engine', () => {
  let localHash: string;
  const start = Date.now();

  beforeAll(async () => {
    writeUserFileCopy();
    startedDockerd = sh(join(tools, 'engine.sh'), ['start']).trim() || undefined;
    timed('base images', () => sh(join(tools, 'base-images.sh'), []));
    const local = await runCli(localTrainArgs());
    expect(local.code, local.stderr).toBe(0);
    localHash = String(lastJson(local.stdout).params_sha256);
  }, 900_000);

  afterAll(() => {
    killLeftoverChildren();
    try {
      timed('down -v', () => dc('down', '-v', '--remove-orphans'));
    } finally {
      removeEarlierBuilds();
      if (startedDockerd) sh(join(tools, 'engine.sh'), ['stop', startedDockerd]);
      rmSync(join(root, userFile), { force: true });
      timings.total = (Date.now() - start) / 1000;
      console.log(`compose engine test timings (s): ${JSON.stringify(timings)}`);
    }
  }, 300_000);

  it('trains through a killed worker, an added one, a killed and a stopped coordinator to the --local hash', async () => {
    const built = timed('up --build --scale worker=3', () =>
      run(compose[0], [...compose.slice(1), 'up', '-d', '--build', '--scale', 'worker=3']),
    );
    expect(built.code, built.stderr).toBe(0);
    for (const m of `${built.stdout}\n${built.stderr}`.matchAll(/---> ([0-9a-f]{12})\b/g)) thisBuild.add(m[1]);
    const [coordinator] = containers('coordinator');
    expect(containers('worker')).toHaveLength(3);

    // A worker killed mid-run, another added.
    await waitFor('epoch 2', () => epochReached(coordinator) >= 2, 300_000);
    const [victim] = containers('worker');
    docker('kill', victim);
    timed('up --scale worker=4', () => dc('up', '-d', '--no-recreate', '--scale', 'worker=4'));
    expect(containers('worker').filter(running).length).toBeGreaterThanOrEqual(3);

    // The coordinator killed (SIGKILL to the container), then `up` again: it resumes from the checkpoint.
    await waitFor('epoch 4', () => epochReached(coordinator) >= 4, 300_000);
    docker('kill', coordinator);
    timed('up again after kill', () => dc('up', '-d', '--no-recreate', '--scale', 'worker=4'));
    await waitFor(
      'resumed after the kill',
      () => /resuming from \/runs\/checkpoints\/checkpoint\.gradq at step [1-9]/.test(logsOf(coordinator).stderr),
      120_000,
    );

    // `stop` (SIGTERM through tini): a final checkpoint and exit 143, well within the stop grace period.
    await waitFor('epoch 6', () => epochReached(coordinator) >= 6, 300_000);
    timed('stop coordinator', () => dc('stop', 'coordinator'));
    expect(docker('inspect', '-f', '{{.State.ExitCode}}', coordinator)).toBe('143');
    expect(timings['stop coordinator']).toBeLessThan(25);
    const resumes = (): number => logsOf(coordinator).stderr.match(/resuming from \S+ at step \d+/g)?.length ?? 0;
    expect(resumes()).toBe(1);
    timed('up again after stop', () => dc('up', '-d', '--no-recreate', '--scale', 'worker=4'));

    await waitFor('the coordinator to finish', () => !running(coordinator), 600_000);
    const { stdout, stderr } = logsOf(coordinator);
    expect(docker('inspect', '-f', '{{.State.ExitCode}}', coordinator), stderr).toBe('0');
    expect(resumes()).toBe(2);
    const summary = lastJson(stdout);
    expect(summary.params_sha256, stderr).toBe(localHash);
    console.log(
      `compose engine run: params_sha256 ${String(summary.params_sha256)} (--local ${localHash}); ${stderr.match(/resuming from \S+ at step \d+/g)?.join('; ')}`,
    );

    // Every worker had its own default name, with host networking too.
    const names = containers('worker').map((id) => /worker (\S+) taking jobs/.exec(logsOf(id).stderr + logsOf(id).stdout)?.[1]);
    expect(names.every(Boolean), names.join(' ')).toBe(true);
    expect(new Set(names).size).toBe(names.length);

    // The model is in the `runs` volume and `run coordinator eval` reads it.
    const evaluated = timed('run coordinator eval', () =>
      dc('run', '--rm', 'coordinator', 'eval', '--model', '/runs/model.gradq', '--json'),
    );
    expect(lastJson(evaluated).accuracy).toBe(summary.test_accuracy);
  }, 1_500_000);

  it('the image that `up --build` made runs `gradq --help` and holds the dashboard’s page', () => {
    // One container for both (on vfs each one starts with a full copy of the image's files): the command the
    // image's entrypoint names (checked below) with --help, then the page (the compose file runs the coordinator
    // with --dashboard).
    const script = 'node apps/coordinator/bin/gradq.js --help && echo "--- page:" && ls apps/coordinator/dashboard';
    const r = run('docker', ['run', '--rm', '--network', 'host', '--entrypoint', 'sh', 'gradq:local', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    const [help, page] = r.stdout.split('--- page:');
    expect(help).toMatch(/gradq train/);
    expect(help).toMatch(/gradq worker/);
    expect(page).toMatch(/index\.html/);
    expect(docker('inspect', '-f', '{{json .Config.Entrypoint}}', 'gradq:local')).toBe('["node","apps/coordinator/bin/gradq.js"]');
  }, 900_000);

  it('refuses a bind mount it cannot write (root’s) at start: one `gradq: error:` line, exit 2', () => {
    // Mounted beside /runs, not over it: compose v1 does not say which of two mounts at one target wins.
    const readOnlyRuns = mkdtempSync(join(tmpdir(), 'gradq-engine-runs-')); // root's, mode 0700: not uid 1000's
    try {
      const r = run(compose[0], [
        ...compose.slice(1), 'run', '--rm', '--no-deps', '-v', `${readOnlyRuns}:/unwritable`, 'coordinator',
        ...localTrainArgs().filter((a, i, all) => a !== SHARED_DATA && !(a === '--data-dir' && all[i + 1] === SHARED_DATA)),
        '--out', '/unwritable/model.gradq',
      ]); // prettier-ignore
      expect(r.code, r.stderr).toBe(2);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('gradq:'));
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^gradq: error: --out .*\/unwritable/);
      expect(existsSync(join(readOnlyRuns, 'model.gradq'))).toBe(false);
    } finally {
      rmSync(readOnlyRuns, { recursive: true, force: true });
    }
  }, 300_000);
});
