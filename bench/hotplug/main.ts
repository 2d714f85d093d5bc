/**
 * bench/hotplug: how long a serial device plugged into the agent's watched directory takes to be
 * in the control plane's register, and one pulled out to leave it. A real control plane (mTLS,
 * tokens from the CLI) and a real agent watching DIR/tty* run as children; a socat pty stands in
 * for the USB adapter. Each round links DIR/ttyHP0 to the pty (the plug; its time is taken just
 * before the symlink(2)), polls /api/overview on the control plane's admin port every --poll-ms
 * until the device is PRESENT, then unlinks it (the pull) and polls until it is no longer
 * present. Prints p50/max each way beside the 200 ms goal and writes bench/results/hotplug-<timestamp>.json.
 * The watcher has no option to run without inotify, so the safety-rescan-only path is not
 * measured; see docs/benchmarks.md.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import type { MeshOverview } from '../../src/admin/mesh-overview';
import { cleanUpOnExit, freePort, type MachineInfo, machineInfo, makeTempDir, runMain, writeResults } from '../common/bench-run';
import { startSecureControlPlane } from '../common/mesh-cli';
import { BIN, Child, sleep, waitFor } from '../data-path/children';
import { socatVersion } from '../data-path/pty-echo';
import { type Percentiles, percentiles, round } from '../data-path/report';
import { parseOptions, USAGE } from './options';

const HOST_ID = 'bench-gw';
const WORKLOAD_ID = 'bench-app';
/** The goal for both directions (ms). */
const GOAL_MS = 200;
/** A round that takes longer than this failed (ms): twice the 2 s safety rescan and then some. */
const ROUND_TIMEOUT_MS = 10_000;

interface HotplugReport {
  benchmark: 'hotplug';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  socat: string;
  options: { rounds: number; pollMs: number };
  units: { latency: 'ms' };
  goalMs: number;
  /** Per round: plug → PRESENT in the register, pull → not present (ms). */
  rounds: Array<{ plugMs: number; pullMs: number }>;
  plug: Percentiles;
  pull: Percentiles;
  /** Why the rescan-only comparison is absent. */
  rescanOnly: string;
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** GET http://`admin`/api/overview, parsed. */
function overview(admin: string): Promise<MeshOverview> {
  return new Promise((resolve, reject) => {
    const req = http.get(`http://${admin}/api/overview`, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`/api/overview answered ${res.statusCode}`));
        else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as MeshOverview);
      });
    });
    req.on('error', reject);
  });
}

async function isPresent(admin: string, device: string): Promise<boolean> {
  const o = await overview(admin);
  return o.hosts.some((h) => h.id === HOST_ID && h.devices.some((d) => d.path === device && d.state === 'PRESENT'));
}

/** Polls every `pollMs` until the device's presence is `want`; the ms from `since` to the answer that showed it. */
async function timeUntil(admin: string, device: string, want: boolean, since: bigint, pollMs: number, hopeless: () => Error | undefined): Promise<number> {
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  for (;;) {
    const fatal = hopeless();
    if (fatal) throw fatal;
    if ((await isPresent(admin, device)) === want) return round(Number(process.hrtime.bigint() - since) / 1e6);
    if (Date.now() > deadline) throw new Error(`${device} not ${want ? 'present' : 'gone'} after ${ROUND_TIMEOUT_MS} ms`);
    await sleep(pollMs);
  }
}

function formatReport(r: HotplugReport): string {
  const m = r.machine;
  const line = (name: string, p: Percentiles): string =>
    `  ${name.padEnd(22)} p50 ${String(p.p50).padStart(7)}  max ${String(p.max).padStart(7)}  mean ${String(p.mean).padStart(7)}   goal ≤ ${r.goalMs}: ${p.max <= r.goalMs ? 'met' : 'missed'}`;
  return [
    `devicemesh hot-plug benchmark — ${m.cpus} × ${m.cpuModel}, Node ${m.node}, load ${m.loadAverage.join(' ')}`,
    `${r.options.rounds} rounds, /api/overview polled every ${r.options.pollMs} ms (ms)`,
    '',
    line('plug → in register', r.plug),
    line('pull → out of register', r.pull),
    '',
    `rescan-only: ${r.rescanOnly}`,
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench:hotplug: ${errorMessage(err)}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const socatAt = socatVersion();
  if (!socatAt) {
    process.stderr.write('bench:hotplug: skipped: socat is not installed (scripts/install-test-deps.sh installs it)\n');
    return 0;
  }
  cleanUpOnExit();
  const startedAt = new Date();
  const dir = makeTempDir('devicemesh-bench-hotplug-');
  const watched = path.join(dir, 'watched');
  fs.mkdirSync(watched);
  const [cpPort, cpAdmin, agentPort, agentAdmin] = await Promise.all(Array.from({ length: 4 }, () => freePort()));
  const cp = `127.0.0.1:${cpPort}`;
  const admin = `127.0.0.1:${cpAdmin}`;
  const env: NodeJS.ProcessEnv = { ...process.env, DEVICEMESH_LOG_LEVEL: 'info' };
  const start = (name: string, args: string[]): Child => Child.spawn(name, process.execPath, [BIN, ...args], path.join(dir, `${name}.log`), env);
  const { controlPlane, hostTokenFile } = await startSecureControlPlane(start, { grpc: cp, admin }, path.join(dir, 'data'), { hostId: HOST_ID, workloadId: WORKLOAD_ID });
  const agent = start('agent', [
    'agent', '--host-id', HOST_ID, '--control-plane', cp, '--listen', `127.0.0.1:${agentPort}`,
    '--watch', path.join(watched, 'tty*'), '--admin', `127.0.0.1:${agentAdmin}`, '--token-file', hostTokenFile,
  ]);
  // One pty for the whole run, made outside the watched directory: each plug is a symlink(2) to it
  // at a known instant, each pull an unlink(2), as udev makes and removes /dev/serial/by-id links.
  const ptyLink = path.join(dir, 'pty');
  const socat = Child.spawn('socat', 'socat', [`pty,raw,echo=0,link=${ptyLink}`, `pty,raw,echo=0,link=${path.join(dir, 'peer')}`], path.join(dir, 'socat.log'));
  const device = path.join(watched, 'ttyHP0');
  try {
    const hopeless = (): Error | undefined => controlPlane.exitError() ?? agent.exitError() ?? socat.exitError();
    await waitFor('the socat pty', () => fs.existsSync(ptyLink), 5000);
    const target = fs.readlinkSync(ptyLink);
    await waitFor('the agent to join the control plane', async () => (await overview(admin)).hosts.some((h) => h.id === HOST_ID && h.state === 'CONNECTED'), 30_000, hopeless);
    const rounds: HotplugReport['rounds'] = [];
    for (let i = 1; i <= options.rounds; i++) {
      const plugged = process.hrtime.bigint();
      fs.symlinkSync(target, device);
      const plugMs = await timeUntil(admin, device, true, plugged, options.pollMs, hopeless);
      const pulled = process.hrtime.bigint();
      fs.unlinkSync(device);
      const pullMs = await timeUntil(admin, device, false, pulled, options.pollMs, hopeless);
      progress(`round ${i}/${options.rounds}: plug ${plugMs} ms, pull ${pullMs} ms`);
      rounds.push({ plugMs, pullMs });
    }
    const report: HotplugReport = {
      benchmark: 'hotplug',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: ['node', path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/hotplug/main.js'), ...argv].join(' '),
      machine: machineInfo(),
      socat: socatAt,
      options: { rounds: options.rounds, pollMs: options.pollMs },
      units: { latency: 'ms' },
      goalMs: GOAL_MS,
      rounds,
      plug: percentiles(rounds.map((r) => r.plugMs)),
      pull: percentiles(rounds.map((r) => r.pullMs)),
      rescanOnly: 'not measured: the agent has no option to watch without inotify (only the 2 s safety rescan); the goal is shown instead',
    };
    writeResults(options.out, report, formatReport(report));
    return 0;
  } finally {
    await Promise.all([socat.stop(), agent.stop(), controlPlane.stop()]);
  }
}

if (require.main === module) runMain('bench:hotplug', main);
