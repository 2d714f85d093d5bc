/**
 * bench/rfc2217-settings: how long an RFC 2217 client waits for the answer to a line-setting
 * change. One client (client.ts) changes the baud rate of an echo's socat pty --changes times
 * (SET-BAUDRATE, cycling through standard rates), then the stop bits --reopen-changes times
 * (SET-STOPSIZE 2 ↔ 1: a setting the agent applies by reopening the port), through ser2net's
 * RFC 2217 port and through devicemesh's (sidecar → socket plane, mTLS → agent → pty), in rounds
 * the two take in turn. Prints p50/p90/p99/max of request → answer beside the targets and writes
 * bench/results/rfc2217-settings-<timestamp>.json. See docs/benchmarks.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import { ComPort } from '../../src/rfc2217/com-port-option';
import { cleanUpOnExit, type MachineInfo, machineInfo, makeTempDir, removeTempDir, runMain, writeResults } from '../common/bench-run';
import { DeviceMesh } from '../data-path/mesh';
import { PtyEcho, socatVersion } from '../data-path/pty-echo';
import { type Percentiles, percentiles } from '../data-path/report';
import { Ser2net, ser2netVersion } from '../data-path/ser2net';
import { Rfc2217Client } from './client';
import { parseOptions, type Rfc2217SettingsOptions, USAGE } from './options';

export const SER2NET_MISSING = 'ser2net not installed: skipping its column (apt-get install ser2net)';
/** The targets (µs): a baud-rate answer within 2 ms at p50; a setting that reopens the port within 20 ms. */
const BAUD_TARGET_US = 2000;
const REOPEN_TARGET_US = 20_000;
/** Standard rates every tty takes; consecutive ones differ, so every request is a change. */
const RATES = [9600, 19200, 38400, 57600, 115200];

type PathName = 'ser2net' | 'devicemesh';
const DESCRIPTIONS: Record<PathName, string> = {
  ser2net: 'client → TCP → ser2net (telnet(rfc2217)) → pty',
  devicemesh: 'client → TCP → sidecar (protocol rfc2217) → socket plane (mTLS) → agent → pty',
};

interface Measured {
  path: PathName;
  description: string;
  baudRateUs: Percentiles;
  stopSizeUs: Percentiles;
}
type Outcome = Measured | { path: PathName; description: string; skipped: string } | { path: PathName; description: string; error: string };

interface Target {
  name: string;
  valueUs: number;
  limitUs: number;
  met: boolean;
}

interface Rfc2217SettingsReport {
  benchmark: 'rfc2217-settings';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  tools: { socat: string; ser2net: string | null };
  options: Omit<Rfc2217SettingsOptions, 'out'>;
  units: { latency: 'µs, from just before the request is written to the data event that completed the answer' };
  paths: Outcome[];
  targets: Target[];
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** One server in front of its own pty echo, with the client connected. */
class SettingsPath {
  private client: Rfc2217Client | undefined;
  private stop: (() => Promise<void>) | undefined;
  private next = 0;
  private stopBits = 1;
  readonly baud: number[] = [];
  readonly stopSize: number[] = [];
  error: string | undefined;

  constructor(readonly name: PathName) {}

  async start(root: string): Promise<void> {
    const dir = path.join(root, this.name);
    fs.mkdirSync(dir);
    const pty = await PtyEcho.create(dir, 'ttyBENCH0');
    let port: number;
    if (this.name === 'ser2net') {
      const ser2net = await Ser2net.start(dir, pty.device, false, true);
      port = ser2net.port;
      this.stop = async () => {
        await ser2net.stop();
        await pty.close();
      };
    } else {
      const mesh = await DeviceMesh.start(dir, path.join(dir, 'tty*'), pty.device, 'mtls', undefined, 'rfc2217');
      port = mesh.listenPort;
      this.stop = async () => {
        await mesh.stop();
        await pty.close();
      };
    }
    this.client = await Rfc2217Client.connect(port);
  }

  /** `count` changes of one kind, their times kept unless `keep` is false (warm-up). */
  async changes(kind: 'baud' | 'stopSize', count: number, keep: boolean): Promise<void> {
    const client = this.client;
    if (!client) throw new Error(`${this.name} was not started`);
    for (let i = 0; i < count; i++) {
      let command: ComPort;
      let value: number;
      if (kind === 'baud') {
        command = ComPort.SetBaudRate;
        value = RATES[this.next++ % RATES.length] as number;
      } else {
        command = ComPort.SetStopSize;
        this.stopBits = this.stopBits === 1 ? 2 : 1;
        value = this.stopBits;
      }
      const answer = await client.request(command, value);
      if (answer.value !== value) throw new Error(`${ComPort[command]} ${value} was answered with ${answer.value}`);
      if (keep) (kind === 'baud' ? this.baud : this.stopSize).push(answer.micros);
    }
  }

  async close(): Promise<void> {
    await this.client?.close();
    await this.stop?.();
  }
}

/** `total` cut into `parts` whole shares that add up to it. */
function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor((total * (i + 1)) / parts) - Math.floor((total * i) / parts));
}

async function measure(runs: SettingsPath[], root: string, o: Rfc2217SettingsOptions): Promise<void> {
  const step = async (run: SettingsPath, what: () => Promise<void>): Promise<void> => {
    if (run.error !== undefined) return;
    try {
      await what();
    } catch (err) {
      run.error = errorMessage(err);
      progress(`${run.name}: FAILED: ${run.error}`);
    }
  };
  for (const run of runs) {
    progress(`${run.name}: setting up`);
    await step(run, async () => {
      await run.start(root);
      await run.changes('baud', o.warmup, false);
      await run.changes('stopSize', Math.ceil(o.warmup / 5), false);
    });
  }
  for (const [kind, total] of [['baud', o.changes], ['stopSize', o.reopenChanges]] as const) {
    for (const [i, count] of shares(total, o.rounds).entries()) {
      progress(`${kind === 'baud' ? 'SET-BAUDRATE' : 'SET-STOPSIZE'}, round ${i + 1}/${o.rounds}: ${count} per path`);
      for (let k = 0; k < runs.length; k++) {
        const run = runs[(i + k) % runs.length] as SettingsPath;
        await step(run, () => run.changes(kind, count, true));
      }
    }
  }
}

function targetsOf(paths: readonly Outcome[]): Target[] {
  const mesh = paths.find((p): p is Measured => p.path === 'devicemesh' && 'baudRateUs' in p);
  if (!mesh) return [];
  const t = (name: string, valueUs: number, limitUs: number): Target => ({ name, valueUs, limitUs, met: valueUs <= limitUs });
  return [
    t('devicemesh SET-BAUDRATE answer, p50', mesh.baudRateUs.p50, BAUD_TARGET_US),
    t('devicemesh SET-STOPSIZE (reopens the port) answer, p50', mesh.stopSizeUs.p50, REOPEN_TARGET_US),
    t('devicemesh SET-STOPSIZE (reopens the port) answer, p99', mesh.stopSizeUs.p99, REOPEN_TARGET_US),
  ];
}

function formatReport(r: Rfc2217SettingsReport): string {
  const m = r.machine;
  const o = r.options;
  const out = [
    `devicemesh RFC 2217 settings benchmark — ${m.cpus} × ${m.cpuModel}, Node ${m.node}, socat ${r.tools.socat}, ser2net ${r.tools.ser2net ?? 'not installed'}`,
    `per path: ${o.changes} SET-BAUDRATE and ${o.reopenChanges} SET-STOPSIZE changes after ${o.warmup} warm-up, in ${o.rounds} rounds, the paths taking turns`,
    `load average at the end ${m.loadAverage.map((l) => l.toFixed(2)).join(' ')}`,
    '',
  ];
  for (const p of r.paths) out.push(`${p.path.padEnd(11)} ${p.description}`);
  out.push('', 'request → answer (µs)', 'path        change        p50     p90     p99     max    mean', '----------  -----------  ------  ------  ------  ------  ------');
  const cell = (n: number): string => n.toFixed(0).padStart(6);
  for (const p of r.paths) {
    if ('baudRateUs' in p) {
      for (const [change, q] of [['SET-BAUDRATE', p.baudRateUs], ['SET-STOPSIZE', p.stopSizeUs]] as const) {
        out.push(`${p.path.padEnd(10)}  ${change.padEnd(11)}  ${[q.p50, q.p90, q.p99, q.max, q.mean].map(cell).join('  ')}`);
      }
    } else if ('skipped' in p) out.push(`skipped ${p.path}: ${p.skipped}`);
    else out.push(`FAILED ${p.path}: ${p.error}`);
  }
  out.push('', 'targets (reported, not enforced):');
  if (r.targets.length === 0) out.push('  devicemesh was not measured in this run');
  for (const t of r.targets) out.push(`  ${t.name.padEnd(56)} ${cell(t.valueUs)} µs  ≤ ${t.limitUs} µs  ${t.met ? 'met' : 'MISSED'}`);
  return out.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let options: Rfc2217SettingsOptions | undefined;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench:rfc2217-settings: ${errorMessage(err)}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const socat = socatVersion();
  if (!socat) {
    process.stderr.write('bench:rfc2217-settings: socat is not installed (apt-get install socat): every path runs over a socat pty pair\n');
    return 1;
  }
  const ser2net = ser2netVersion();
  if (!ser2net) process.stdout.write(`${SER2NET_MISSING}\n`);
  cleanUpOnExit();
  const startedAt = new Date();
  const root = makeTempDir('devicemesh-bench-rfc2217-');
  try {
    const names: PathName[] = ser2net ? ['ser2net', 'devicemesh'] : ['devicemesh'];
    const runs = names.map((name) => new SettingsPath(name));
    try {
      await measure(runs, root, options);
    } finally {
      for (const run of runs) await run.close();
    }
    const paths: Outcome[] = (['ser2net', 'devicemesh'] as const).map((name): Outcome => {
      const description = DESCRIPTIONS[name];
      const run = runs.find((r) => r.name === name);
      if (!run) return { path: name, description, skipped: SER2NET_MISSING };
      if (run.error !== undefined) return { path: name, description, error: run.error };
      return { path: name, description, baudRateUs: percentiles(run.baud), stopSizeUs: percentiles(run.stopSize) };
    });
    const { out, ...shown } = options;
    const report: Rfc2217SettingsReport = {
      benchmark: 'rfc2217-settings',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: ['node', path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/rfc2217-settings/main.js'), ...argv].join(' '),
      machine: machineInfo(),
      tools: { socat, ser2net: ser2net ?? null },
      options: shown,
      units: { latency: 'µs, from just before the request is written to the data event that completed the answer' },
      paths,
      targets: targetsOf(paths),
    };
    writeResults(out, report, formatReport(report));
    return paths.some((p) => 'error' in p) ? 1 : 0;
  } finally {
    removeTempDir(root);
  }
}

if (require.main === module) runMain('bench:rfc2217-settings', main);
