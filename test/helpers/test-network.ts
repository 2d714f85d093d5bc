import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { MeshProcess } from './processes';

/** One simulated host: a network namespace with one address on a shared bridge, or a loopback address. */
export interface TestHost {
  name: string;
  address: string;
  /** Starts a devicemesh process on this host. */
  start(label: string, args: string[]): MeshProcess;
}

/**
 * Hosts for multi-host tests. As root with iproute2, each host is a network namespace joined to
 * the others by a bridge in this namespace (which the test itself uses to reach them); otherwise
 * each host is a loopback address (127.0.0.2, …), which checks addressing but not isolation.
 */
export class TestNetwork {
  readonly isolated: boolean;
  readonly reason: string;
  private readonly id = randomBytes(3).toString('hex');
  private readonly subnet = `10.${200 + (randomBytes(1)[0] as number) % 50}.${randomBytes(1)[0] as number}`;
  private readonly namespaces: string[] = [];
  private bridge: string | undefined;

  constructor() {
    const root = process.getuid?.() === 0;
    const ip = spawnSync('ip', ['-V'], { stdio: 'ignore' }).status === 0;
    this.isolated = root && ip;
    this.reason = this.isolated
      ? 'network namespaces joined by a bridge'
      : `loopback addresses (${root ? 'iproute2 is not installed' : 'not root'}: no network namespaces)`;
  }

  /** Makes host number `n` (1-based). */
  host(name: string, n: number): TestHost {
    if (!this.isolated) {
      const address = `127.0.0.${n + 1}`;
      return { name, address, start: (label, args) => MeshProcess.start(label, args) };
    }
    const bridge = this.ensureBridge();
    const ns = `dmn${this.id}${n}`;
    const veth = `dmv${this.id}${n}`;
    const peer = `dmp${this.id}${n}`;
    const address = `${this.subnet}.${n}`;
    run(['netns', 'add', ns]);
    this.namespaces.push(ns);
    run(['link', 'add', veth, 'type', 'veth', 'peer', 'name', peer]);
    run(['link', 'set', peer, 'netns', ns]);
    run(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', peer]);
    run(['-n', ns, 'link', 'set', peer, 'up']);
    run(['-n', ns, 'link', 'set', 'lo', 'up']);
    run(['link', 'set', veth, 'master', bridge]);
    run(['link', 'set', veth, 'up']);
    return {
      name,
      address,
      start: (label, args) => MeshProcess.start(label, args, {}, ['ip', 'netns', 'exec', ns]),
    };
  }

  /** The test's own namespace as the hosts reach it: the bridge's address, or 127.0.0.1 without namespaces. */
  localAddress(): string {
    if (!this.isolated) return '127.0.0.1';
    this.ensureBridge();
    return `${this.subnet}.254`;
  }

  private ensureBridge(): string {
    if (this.bridge) return this.bridge;
    const bridge = `dmb${this.id}`;
    run(['link', 'add', bridge, 'type', 'bridge']);
    run(['addr', 'add', `${this.subnet}.254/24`, 'dev', bridge]);
    run(['link', 'set', bridge, 'up']);
    this.bridge = bridge;
    return bridge;
  }

  /** Removes the namespaces (their veths go with them) and the bridge. */
  close(): void {
    for (const ns of this.namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    if (this.bridge) spawnSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore' });
  }
}

function run(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
}
