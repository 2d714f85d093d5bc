/**
 * bench/flood: what a connection flood on a listener costs the clients it already serves, with
 * refused connections turned away on the net.Socket (the baseline: Node's public API) and on the
 * accepted handle (the AcceptGate of the agent's socket plane and the sidecar's app listeners).
 * An echo server behind the socket plane's connection limits and a client doing 64-byte round
 * trips share this process and CPU 0; an attacker process on the last CPU opens and drops
 * connections from another address at a fixed rate, the same for both ways of refusing. Each run
 * times the round trips idle and then during the flood. Prints a table and writes bench/results/flood-<timestamp>.json.
 * See docs/benchmarks.md.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import { cleanUpOnExit, connectLoopback, type MachineInfo, machineInfo, runMain, trackChild, writeResults } from '../common/bench-run';
import { roundTrips } from '../data-path/measure';
import { type Percentiles, percentiles, round } from '../data-path/report';
import { GatedEcho, REFUSAL_MODES, type RefusalMode } from './gated-echo';
import { parseOptions, USAGE } from './options';

const MESSAGE_BYTES = 64;
const WARMUP = 3000;
const ROUND_TRIP_TIMEOUT_MS = 5000;
/** The flood counts as under way once the attacker has made this many connections. */
const UNDER_WAY = 200;

interface FloodRun {
  mode: RefusalMode;
  /** The rate the attacker was asked for, connections a second. */
  rate: number;
  idle: Percentiles;
  during: Percentiles;
  /** p50 during ÷ p50 idle. */
  ratio: number;
  /** Over the round trips during the flood: connections made, and those the attacker skipped because too many were pending. */
  attackerConnectionsPerSecond: number;
  attackerSkippedPerSecond: number;
  refusedPerSecond: number;
  /** Connections the limits refused in the whole run. */
  refused: number;
}

interface FloodReport {
  benchmark: 'flood';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  /** Whether the server and client were on CPU 0 and the attacker alone on the last CPU. */
  pinned: boolean;
  options: { roundTrips: number; rates: number[]; rounds: number; messageBytes: number };
  units: { roundTrip: 'µs'; rates: 'connections/s' };
  runs: FloodRun[];
  /** Per rate and mode, medians over the rounds: the p50 ratio, the p99 during the flood, the connections made a second. */
  medians: Array<{ rate: number; mode: RefusalMode; ratio: number; duringP99: number; connectedPerSecond: number }>;
}

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** `taskset` from util-linux pins `pid` (all its threads) to `cpu`; false where it cannot. */
function pin(pid: number, cpu: number): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0;
}

class Attacker {
  private constructor(private readonly child: ChildProcess, private readonly exited: Promise<void>) {}

  static start(port: number, rate: number, localAddress: string, cpu: number | undefined): Attacker {
    const child = fork(path.join(__dirname, 'flood-attacker.js'), [String(port), String(rate), localAddress], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (cpu !== undefined && child.pid !== undefined) pin(child.pid, cpu);
    return new Attacker(child, trackChild(child));
  }

  counts(): Promise<{ connected: number; skipped: number }> {
    return new Promise((resolve, reject) => {
      this.child.once('message', (m) => resolve(m as { connected: number; skipped: number }));
      this.child.send({}, (err) => err && reject(err));
    });
  }

  async stop(): Promise<void> {
    this.child.disconnect();
    await this.exited;
  }
}

/**
 * One run. Every run floods from its own loopback address (`attackerAddress`): the tens of
 * thousands of connections a run leaves in TIME_WAIT would otherwise slow the next run's attacker
 * down as the kernel searches for a free source port.
 */
async function floodRun(mode: RefusalMode, rate: number, roundTripCount: number, attackerAddress: string, attackerCpu: number | undefined): Promise<FloodRun> {
  const echo = await GatedEcho.start(mode);
  const client = await connectLoopback(echo.port);
  let attacker: Attacker | undefined;
  try {
    await roundTrips(client, MESSAGE_BYTES, WARMUP, ROUND_TRIP_TIMEOUT_MS);
    const idle = await roundTrips(client, MESSAGE_BYTES, roundTripCount, ROUND_TRIP_TIMEOUT_MS);
    attacker = Attacker.start(echo.port, rate, attackerAddress, attackerCpu);
    while ((await attacker.counts()).connected < UNDER_WAY) await new Promise((resolve) => setTimeout(resolve, 10));
    const [before, refusedBefore, startedAt] = [await attacker.counts(), echo.refused, process.hrtime.bigint()];
    const during = await roundTrips(client, MESSAGE_BYTES, roundTripCount, ROUND_TRIP_TIMEOUT_MS);
    const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
    const after = await attacker.counts();
    const [idleP, duringP] = [percentiles(idle), percentiles(during)];
    return {
      mode,
      rate,
      idle: idleP,
      during: duringP,
      ratio: round(duringP.p50 / idleP.p50, 2),
      attackerConnectionsPerSecond: Math.round((after.connected - before.connected) / seconds),
      attackerSkippedPerSecond: Math.round((after.skipped - before.skipped) / seconds),
      refusedPerSecond: Math.round((echo.refused - refusedBefore) / seconds),
      refused: echo.refused,
    };
  } finally {
    await attacker?.stop();
    client.destroy();
    await echo.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function formatReport(r: FloodReport): string {
  const m = r.machine;
  const rows = r.runs.map(
    (run) =>
      `  ${String(run.rate).padStart(6)} ${run.mode.padEnd(10)} ${String(run.attackerConnectionsPerSecond).padStart(9)} ${String(run.idle.p50).padStart(9)} ${String(run.idle.p99).padStart(9)} ${String(run.during.p50).padStart(11)} ${String(run.during.p99).padStart(11)} ${run.ratio.toFixed(2).padStart(7)}× ${String(run.refusedPerSecond).padStart(11)}`,
  );
  return [
    `devicemesh flood benchmark — ${m.cpus} × ${m.cpuModel}, Node ${m.node}${r.pinned ? '' : ' (not pinned: the attacker shares the CPUs)'}`,
    `${r.options.roundTrips} round trips of ${r.options.messageBytes} B idle, then during a flood at each rate (µs; rates in connections/s)`,
    '',
    '    rate refusal   connected  idle p50  idle p99  during p50  during p99   ratio  refused/s',
    ...rows,
    '',
    `medians over ${r.options.rounds} round(s):`,
    ...r.medians.map(
      (m) => `  ${String(m.rate).padStart(6)}/s ${m.mode.padEnd(10)} connected ${String(m.connectedPerSecond).padStart(6)}/s   p50 ratio ${m.ratio.toFixed(2)}×   during p99 ${m.duringP99} µs`,
    ),
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench:flood: ${errorMessage(err)}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  cleanUpOnExit();
  const startedAt = new Date();
  const cpus = os.cpus().length;
  // The attacker stands in for a machine elsewhere: where there are two CPUs or more it gets the last one to itself.
  const pinned = cpus > 1 && pin(process.pid, 0);
  if (!pinned) progress('not pinned (one CPU, or no taskset): the attacker shares the CPUs with the server');
  const runs: FloodRun[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const rate of options.rates) {
      for (const mode of REFUSAL_MODES) {
        progress(`round ${round}/${options.rounds}: ${rate} connections/s, refusal ${mode}`);
        runs.push(await floodRun(mode, rate, options.roundTrips, `127.0.${round}.${10 + runs.length}`, pinned ? cpus - 1 : undefined));
      }
    }
  }
  const medians = options.rates.flatMap((rate) =>
    REFUSAL_MODES.map((mode) => {
      const these = runs.filter((r) => r.rate === rate && r.mode === mode);
      return {
        rate,
        mode,
        ratio: median(these.map((r) => r.ratio)),
        duringP99: median(these.map((r) => r.during.p99)),
        connectedPerSecond: median(these.map((r) => r.attackerConnectionsPerSecond)),
      };
    }),
  );
  const report: FloodReport = {
    benchmark: 'flood',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: ['node', path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/flood/main.js'), ...argv].join(' '),
    machine: machineInfo(),
    pinned,
    options: { roundTrips: options.roundTrips, rates: options.rates, rounds: options.rounds, messageBytes: MESSAGE_BYTES },
    units: { roundTrip: 'µs', rates: 'connections/s' },
    runs,
    medians,
  };
  writeResults(options.out, report, formatReport(report));
  return 0;
}

if (require.main === module) runMain('bench:flood', main);
