/**
 * bench/footprint: the resident memory of the mesh's processes, each beside a bare `node`
 * process: a control plane, an agent with one binding on a socat pty and a sidecar in the secure
 * default (as bench/data-path starts them), idle, then during and after a load of 64-byte round
 * trips through the binding. A probe loaded with --require says where each process's memory goes
 * (heap, external, modules, .proto files read). Prints a table and writes
 * bench/results/footprint-<timestamp>.json. See docs/benchmarks.md.
 */
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import { benchArgs, integerFlag, secondsFlag } from '../common/bench-options';
import { connectLoopback, machineInfo, runMain, writeResults } from '../common/bench-run';
import { type ResidentMemory, residentMemory } from '../common/process-memory';
import { Child, cleanUpOnExit, makeTempDir, removeTempDir, sleep } from '../data-path/children';
import { roundTrips } from '../data-path/measure';
import { DeviceMesh } from '../data-path/mesh';
import { PtyEcho, socatVersion } from '../data-path/pty-echo';
import type { ProbeSnapshot } from './memory-probe';
import { askProbe, probeEnv } from './probe';
import { type FootprintReport, formatReport, growthOf, MEASURED, type Measured, type ProcessFootprint, targetsOf } from './report';

const USAGE = [
  'usage: npm run bench:footprint -- [flags]   (or node dist/bench/footprint/main.js [flags])',
  '',
  '  --settle N          seconds the mesh idles before the idle figures (default 5)',
  '  --seconds N         seconds of round trips (default 10)',
  '  --message-bytes N   size of a round-trip message (default 64)',
  '  --quick             smoke run: 2 s idle, 2 s of round trips',
  '  --out FILE          JSON results (default bench/results/footprint-<timestamp>.json)',
].join('\n');

const SAMPLE_MS = 250;
/** Round trips between looks at the clock. */
const BATCH = 200;

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

const larger = (a: ResidentMemory, b: ResidentMemory): ResidentMemory => (b.rssMB > a.rssMB ? b : a);

/** Round trips for `seconds` on the binding's port while every process's RSS is sampled; the highest sample of each. */
async function loadPeaks(port: number, pids: Readonly<Record<Measured, number>>, seconds: number, messageBytes: number): Promise<{ peaks: Record<Measured, ResidentMemory>; count: number; seconds: number }> {
  const sample = (): Record<Measured, ResidentMemory> =>
    Object.fromEntries(MEASURED.map((name) => [name, residentMemory(pids[name])])) as Record<Measured, ResidentMemory>;
  let peaks = sample();
  const sampler = setInterval(() => {
    const now = sample();
    peaks = Object.fromEntries(MEASURED.map((name) => [name, larger(peaks[name], now[name])])) as Record<Measured, ResidentMemory>;
  }, SAMPLE_MS);
  const socket = await connectLoopback(port);
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  let count = 0;
  try {
    while (elapsed() < seconds) {
      count += (await roundTrips(socket, messageBytes, BATCH, 10_000)).length;
    }
  } finally {
    clearInterval(sampler);
    socket.destroy();
  }
  return { peaks, count, seconds: Math.round(elapsed() * 10) / 10 };
}

export async function main(argv: string[]): Promise<number> {
  const startedAt = new Date();
  const args = benchArgs('footprint', argv, ['settle', 'seconds', 'message-bytes'], startedAt);
  if (!args) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { values, quick, out } = args;
  const options = {
    settleSeconds: secondsFlag('settle', values.settle ?? (quick ? '2' : '5'), 600),
    loadSeconds: secondsFlag('seconds', values.seconds ?? (quick ? '2' : '10'), 3600),
    messageBytes: integerFlag('message-bytes', values['message-bytes'] ?? '64', 4, 65_536),
    quick,
  };
  if (!socatVersion()) {
    process.stderr.write('bench:footprint: socat is not installed (scripts/install-test-deps.sh): the device is an echo on a socat pty\n');
    return 1;
  }
  cleanUpOnExit();
  const dir = makeTempDir('devicemesh-bench-footprint-');
  const probeDir = path.join(dir, 'probe');
  // Every Node process started from here on carries the probe, the bare one included.
  Object.assign(process.env, probeEnv(probeDir, false));
  let pty: PtyEcho | undefined;
  let mesh: DeviceMesh | undefined;
  const bare = Child.spawn('bare-node', process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], path.join(dir, 'bare-node.log'));
  try {
    progress('starting the mesh: control plane, agent, sidecar, one binding');
    pty = await PtyEcho.create(dir, 'ttyFOOT0');
    mesh = await DeviceMesh.start(dir, path.join(dir, 'tty*'), pty.device);
    // A two-hop mesh always has its sidecar (only a one-hop one runs without).
    const sidecar = mesh.sidecar as Child;
    const pids: Record<Measured, number> = { 'bare-node': bare.pid, sidecar: sidecar.pid, agent: mesh.agent.pid, 'control-plane': mesh.controlPlane.pid };
    progress(`idling ${options.settleSeconds} s`);
    await sleep(options.settleSeconds * 1000);
    const probes = async (): Promise<Record<Measured, ProbeSnapshot>> => {
      const entries: [Measured, ProbeSnapshot][] = [];
      for (const name of MEASURED) entries.push([name, await askProbe(probeDir, pids[name])]);
      return Object.fromEntries(entries) as Record<Measured, ProbeSnapshot>;
    };
    const idle = Object.fromEntries(MEASURED.map((name) => [name, residentMemory(pids[name])])) as Record<Measured, ResidentMemory>;
    const idleProbes = await probes();
    progress(`round trips for ${options.loadSeconds} s`);
    const load = await loadPeaks(mesh.listenPort, pids, options.loadSeconds, options.messageBytes);
    const after = Object.fromEntries(MEASURED.map((name) => [name, residentMemory(pids[name])])) as Record<Measured, ResidentMemory>;
    const afterProbes = await probes();
    const processes = Object.fromEntries(
      MEASURED.map((name): [Measured, ProcessFootprint] => [
        name,
        {
          idle: idle[name],
          idleProbe: idleProbes[name],
          loadPeak: larger(load.peaks[name], after[name]),
          afterLoad: after[name],
          afterLoadProbe: afterProbes[name],
          growthMB: growthOf(idle[name], after[name]),
          peakGrowthMB: growthOf(idle[name], larger(load.peaks[name], after[name])),
        },
      ]),
    ) as Record<Measured, ProcessFootprint>;
    const report: FootprintReport = {
      benchmark: 'footprint',
      startedAt: startedAt.toISOString(),
      machine: machineInfo(),
      options,
      load: { roundTrips: load.count, seconds: load.seconds },
      processes,
      targets: targetsOf(processes),
    };
    writeResults(out, report, formatReport(report));
    return 0;
  } catch (err) {
    process.stderr.write(`bench:footprint: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    await mesh?.stop();
    await pty?.close();
    await bare.stop();
    removeTempDir(dir);
  }
}

if (require.main === module) runMain('bench:footprint', main);
