import { processRuns } from '@gradq/cli';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';

/**
 * A lab of network namespaces for tests: one namespace per host, each with one interface (`eth0`, an address in
 * SUBNET) on a veth pair whose other end is a port of a bridge in a "switch" namespace of the lab's own. No
 * namespace has a default route or any link to the machine's own network: lab traffic stays in the lab. Each
 * link can be rate-limited (tbf, both ways) and taken down and up again.
 *
 * Names are `gqlab-<pid>-<host>`, by the pid of the process that made them, so that labs of concurrent runs never
 * clash and a lab left by a process that died (SIGKILL: no afterAll) is recognised and removed (removeStaleLabs).
 */
export const LAB_PREFIX = 'gqlab';
/** The lab's private subnet: hosts get .2, .3, … in the order given. */
export const SUBNET = '10.213.0';

/** Why the lab cannot run here, or undefined when it can (root, `ip netns`, `tc`, veth and bridge links). */
export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root to include the lab)';
  for (const [tool, args] of [
    ['ip', ['netns', 'list']],
    ['tc', ['-V']],
  ] as const) {
    const r = spawnSync(tool, args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `\`${tool} ${args.join(' ')}\` fails (${r.error?.message ?? r.stderr.trim()}): install iproute2`;
  }
  const probe = `${LAB_PREFIX}-${process.pid}-probe`;
  try {
    ip('netns', 'add', probe);
    ip('-n', probe, 'link', 'add', 'b0', 'type', 'bridge');
    ip('-n', probe, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    return undefined;
  } catch (e) {
    return `cannot make a namespace with a bridge and a veth pair: ${(e as Error).message.trim()}`;
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
}

/** Deletes the namespaces of labs whose process is gone. */
export function removeStaleLabs(): string[] {
  const stale = labNamespaces().filter(({ pid }) => pid !== process.pid && !processRuns(pid));
  for (const { name } of stale) spawnSync('ip', ['netns', 'del', name]);
  return stale.map((s) => s.name);
}

/** Every lab namespace on the machine, with the pid its name records. */
export function labNamespaces(): Array<{ name: string; pid: number }> {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => line.split(' ')[0])
    .flatMap((name) => {
      const m = new RegExp(`^${LAB_PREFIX}-(\\d+)-`).exec(name);
      return m ? [{ name, pid: Number(m[1]) }] : [];
    });
}

export class NetLab {
  private readonly children = new Set<ChildProcess>();

  private constructor(
    readonly hosts: readonly string[],
    private readonly tag: string,
  ) {}

  /**
   * Makes the lab: the switch and one namespace per host (names of letters, digits and '-', at most 12 characters),
   * every link up and unlimited. On failure, what was made is removed again.
   */
  static create(hosts: readonly string[]): NetLab {
    for (const h of hosts) {
      if (!/^[a-z0-9-]{1,12}$/.test(h) || h === 'switch') throw new Error(`lab host name ${JSON.stringify(h)}: use 1-12 of a-z, 0-9, '-'`);
    }
    if (new Set(hosts).size !== hosts.length || hosts.length > 250) throw new Error(`lab hosts ${hosts.join(', ')}: distinct, at most 250`);
    const lab = new NetLab(hosts, `${LAB_PREFIX}-${process.pid}-${Date.now().toString(36).slice(-4)}`);
    try {
      const sw = lab.switchNs;
      ip('netns', 'add', sw);
      ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', sw, 'link', 'set', 'br0', 'up');
      for (const h of hosts) {
        const ns = lab.ns(h);
        ip('netns', 'add', ns);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', lab.port(h), 'netns', sw);
        ip('-n', sw, 'link', 'set', lab.port(h), 'master', 'br0');
        ip('-n', sw, 'link', 'set', lab.port(h), 'up');
        ip('-n', ns, 'addr', 'add', `${lab.address(h)}/24`, 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
      }
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  /** The namespace of a host. */
  ns(host: string): string {
    this.check(host);
    return `${this.tag}-${host}`;
  }

  /** A host's address in SUBNET. */
  address(host: string): string {
    return `${SUBNET}.${this.hosts.indexOf(this.check(host)) + 2}`;
  }

  /** Limits the host's link to `mbit` Mbit/s each way (token bucket: bursts of 1 ms at that rate, 64 KB at least). */
  setRate(host: string, mbit: number): void {
    const burst = Math.max(64 * 1024, Math.round((mbit * 1e6) / 8 / 1000));
    for (const [ns, dev] of [
      [this.ns(host), 'eth0'],
      [this.switchNs, this.port(host)],
    ]) {
      tc('-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${mbit}mbit`, 'burst', String(burst), 'latency', '50ms');
    }
  }

  /** Takes the host's link down at the switch (a pulled cable: whatever it sends or is sent is lost), or up again. */
  setLink(host: string, up: boolean): void {
    ip('-n', this.switchNs, 'link', 'set', this.port(host), up ? 'up' : 'down');
  }

  /** Starts `command args…` inside the host's namespace; the child is killed by destroy() if still running. */
  spawn(host: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    // `ip netns exec` enters the namespace and execs the command: the child's pid is the command's.
    const child = spawn('ip', ['netns', 'exec', this.ns(host), command, ...args], { env: { ...process.env, ...env } });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** SIGKILLs the children still running and deletes every namespace of the lab (their links go with them). */
  destroy(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    for (const { name } of labNamespaces()) if (name.startsWith(`${this.tag}-`)) spawnSync('ip', ['netns', 'del', name]);
  }

  private get switchNs(): string {
    return `${this.tag}-switch`;
  }

  /** The switch's port for a host (interface names have at most 15 characters). */
  private port(host: string): string {
    return `p${this.hosts.indexOf(this.check(host))}`;
  }

  private check(host: string): string {
    if (!this.hosts.includes(host)) throw new Error(`no host ${JSON.stringify(host)} in the lab (${this.hosts.join(', ')})`);
    return host;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tc(...args: string[]): void {
  execFileSync('tc', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
