/**
 * bench/sharing: one AT device on a pty shared by 1, 8 and 64 app connections through devicemesh
 * (control plane, agent, sidecar as separate processes; a shared binding with a command queue),
 * against one client on the pty itself; then what the command queue alone adds per command, in
 * process. Prints a table with the targets of acceptance 6 and writes
 * bench/results/sharing-<timestamp>.json. See docs/benchmarks.md.
 */
import { autoDetect } from '@serialport/bindings-cpp';
import * as path from 'node:path';
import { SerialDriver } from '../../agent/drivers/serial-driver';
import { errorMessage } from '../../src/errors';
import { cleanUpOnExit, connectLoopback, machineInfo, makeTempDir, removeTempDir, runMain, writeResults } from '../common/bench-run';
import { socatVersion } from '../data-path/pty-echo';
import { type ConsumerRunResult, runConsumers } from './consumer-run';
import { parseOptions, USAGE } from './options';
import { PtyAtDevice } from './pty-at-device';
import { measureQueueOverhead } from './queue-overhead';
import { formatReport, type SharingReport, targetsOf } from './report';
import { SHARED_POLICY, SharedMesh } from './shared-mesh';

const QUEUE_WARMUP = 5000;

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** One client on the pty, opened with the agent's own serial driver; closed again so that the agent can lock it. */
async function baseline(device: string, seconds: number): Promise<ConsumerRunResult> {
  const handle = await new SerialDriver(autoDetect()).open(device, { serial: null, settings: {} });
  try {
    return await runConsumers([handle.stream], seconds);
  } finally {
    await handle.close();
  }
}

async function shared(dir: string, device: string, counts: number[], seconds: number): Promise<ConsumerRunResult[]> {
  progress('starting control plane, agent and sidecar');
  const mesh = await SharedMesh.start(dir, path.join(dir, 'tty*'), device);
  try {
    const results: ConsumerRunResult[] = [];
    for (const n of counts) {
      progress(`${n} consumer(s) through devicemesh for ${seconds} s`);
      const sockets = await Promise.all(Array.from({ length: n }, () => connectLoopback(mesh.listenPort)));
      try {
        results.push(await runConsumers(sockets, seconds));
      } finally {
        for (const s of sockets) s.destroy();
      }
    }
    return results;
  } finally {
    await mesh.stop();
  }
}

export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench:sharing: ${errorMessage(err)}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!socatVersion()) {
    process.stderr.write('bench:sharing: socat is not installed (apt-get install socat): the device is on a socat pty pair\n');
    return 1;
  }
  cleanUpOnExit();
  const startedAt = new Date();
  const dir = makeTempDir('devicemesh-bench-sharing-');
  try {
    const pty = await PtyAtDevice.create(dir, 'ttyShared');
    let base: ConsumerRunResult;
    let viaMesh: ConsumerRunResult[];
    try {
      progress(`baseline: 1 client on the pty for ${options.seconds} s`);
      base = await baseline(pty.device, options.seconds);
      viaMesh = await shared(dir, pty.device, options.consumers, options.seconds);
    } finally {
      await pty.close();
    }
    progress(`queue overhead: ${options.queueCommands} commands each side`);
    const queueOverhead = await measureQueueOverhead(options.queueCommands, QUEUE_WARMUP);
    const report: SharingReport = {
      benchmark: 'sharing',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: ['node', path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/sharing/main.js'), ...argv].join(' '),
      machine: machineInfo(),
      policy: SHARED_POLICY,
      units: { roundTrip: 'µs', throughput: 'commands/s' },
      baseline: base,
      shared: viaMesh,
      queueOverhead,
      targets: targetsOf(viaMesh, queueOverhead),
    };
    writeResults(options.out, report, formatReport(report));
    return 0;
  } finally {
    removeTempDir(dir);
  }
}

if (require.main === module) runMain('bench:sharing', main);
