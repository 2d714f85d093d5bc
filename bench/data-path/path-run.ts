import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import { type Child, cpuSecondsOf, sleep } from './children';
import { bulkTransfer, roundTrips } from './measure';
import { type ProcessProfile, readProcessProfile } from './profile';
import type { BenchOptions } from './options';
import { type AppConnection, PATH_DESCRIPTIONS, type PathName, type PathSetup, setUpPath } from './paths';
import { type CpuUse, type PathOutcome, percentiles, round, type RoundTripPhase } from './report';

/** A message that has not come back in this long means the path is broken, not slow. */
const ROUND_TRIP_TIMEOUT_MS = 10_000;
const BULK_STALL_MS = 15_000;
const CONNECT_ATTEMPTS = 5;
const KiB = 1024;

/** Time for a SIGUSR2 to reach the probes before the round trips start (and after they end). */
const WINDOW_SETTLE_MS = 100;

/** Opens or closes the loop probe's window in each process. */
async function toggleWindows(processes: Child[]): Promise<void> {
  for (const c of processes) c.process.kill('SIGUSR2');
  await sleep(WINDOW_SETTLE_MS);
}

/** CPU seconds of the benchmark itself (the app) and of each of the path's processes. */
function cpuSnapshot(processes: Child[]): Record<string, number> {
  const { user, system } = process.cpuUsage();
  const out: Record<string, number> = { app: (user + system) / 1e6 };
  for (const c of processes) out[c.name] = cpuSecondsOf(c.pid);
  return out;
}

/** Runs `phase`, adding its wall time and the CPU each process used meanwhile to `total`. */
async function addingCpu<T>(total: CpuUse, processes: Child[], phase: () => Promise<T>): Promise<T> {
  const before = cpuSnapshot(processes);
  const started = process.hrtime.bigint();
  const result = await phase();
  total.wallSeconds += Number(process.hrtime.bigint() - started) / 1e9;
  for (const [name, s] of Object.entries(cpuSnapshot(processes))) total.bySeconds[name] = (total.bySeconds[name] ?? 0) + s - (before[name] ?? 0);
  return result;
}

function rounded(cpu: CpuUse): CpuUse {
  return { wallSeconds: round(cpu.wallSeconds, 3), bySeconds: Object.fromEntries(Object.entries(cpu.bySeconds).map(([k, v]) => [k, round(v, 2)])) };
}

/**
 * One path through the whole benchmark: set up and warmed up once, then measured in rounds that
 * the paths take in turn (so that a change in the machine's load meets every path alike), its
 * figures gathered over the rounds. A failure is kept as this path's outcome; the others go on.
 */
export class PathRun {
  private setup: PathSetup | undefined;
  private conn: AppConnection | undefined;
  private readonly times: Record<RoundTripPhase, number[]> = { fresh: [], afterBulk: [] };
  private bulkBytes = 0;
  private bulkSeconds = 0;
  private readonly roundTripCpu: Record<RoundTripPhase, CpuUse> = {
    fresh: { wallSeconds: 0, bySeconds: {} },
    afterBulk: { wallSeconds: 0, bySeconds: {} },
  };
  private readonly bulkCpu: CpuUse = { wallSeconds: 0, bySeconds: {} };
  private error: string | undefined;
  /** Round trips (or, profiling bulk, message-sized pieces of it) timed inside the profiled processes' windows. */
  private profiledRoundTrips = 0;

  constructor(
    readonly name: PathName,
    private readonly options: BenchOptions,
    private readonly progress: (message: string) => void,
  ) {}

  get failed(): boolean {
    return this.error !== undefined;
  }

  /** Sets the path up, connects the app and warms up with round trips. */
  start(root: string): Promise<void> {
    return this.step(async () => {
      this.progress(`${this.name}: setting up`);
      this.setup = await setUpPath(this.name, root, this.options.profile);
      this.conn = await this.connectWorking(this.setup);
      if (this.options.warmup > 0) await roundTrips(this.conn.stream, this.options.messageBytes, this.options.warmup, ROUND_TRIP_TIMEOUT_MS);
    });
  }

  roundTrips(phase: RoundTripPhase, count: number): Promise<void> {
    return this.step(async () => {
      const { setup, conn } = this.started();
      const times = await this.inWindow(phase === 'fresh' && this.options.profilePhase === 'round-trips', count, () =>
        addingCpu(this.roundTripCpu[phase], setup.processes(), () => roundTrips(conn.stream, this.options.messageBytes, count, ROUND_TRIP_TIMEOUT_MS)),
      );
      this.times[phase].push(...times);
    });
  }

  /** An untimed sixteenth of the bulk transfer. */
  warmUpBulk(): Promise<void> {
    return this.step(async () => {
      const chunkBytes = this.options.chunkKiB * KiB;
      const bytes = Math.max(chunkBytes, Math.floor((this.options.bulkMiB * KiB * KiB) / 16));
      await bulkTransfer(this.started().conn.stream, bytes, chunkBytes, BULK_STALL_MS);
    });
  }

  bulk(bytes: number): Promise<void> {
    return this.step(async () => {
      const { setup, conn } = this.started();
      const r = await this.inWindow(this.options.profilePhase === 'bulk', bytes / this.options.messageBytes, () =>
        addingCpu(this.bulkCpu, setup.processes(), () => bulkTransfer(conn.stream, bytes, this.options.chunkKiB * KiB, BULK_STALL_MS)),
      );
      this.bulkBytes += r.bytes;
      this.bulkSeconds += r.seconds;
    });
  }

  outcome(): PathOutcome {
    const description = PATH_DESCRIPTIONS[this.name];
    if (this.error !== undefined) return { path: this.name, description, error: this.error };
    return {
      path: this.name,
      description,
      roundTripUs: percentiles(this.times.fresh),
      bulk: { bytes: this.bulkBytes, seconds: round(this.bulkSeconds, 3), mbPerSecond: round(this.bulkBytes / 1e6 / this.bulkSeconds, 2) },
      roundTripAfterBulkUs: percentiles(this.times.afterBulk),
      cpu: { roundTrips: rounded(this.roundTripCpu.fresh), bulk: rounded(this.bulkCpu), roundTripsAfterBulk: rounded(this.roundTripCpu.afterBulk) },
    };
  }

  async close(): Promise<void> {
    await this.conn?.close();
    await this.setup?.close();
  }

  /**
   * Runs `task` inside the profiled processes' windows when `wanted` (profile mode), counting
   * `units` (round trips; for bulk, message-sized pieces of it) toward the per-round-trip figures.
   */
  private async inWindow<T>(wanted: boolean, units: number, task: () => Promise<T>): Promise<T> {
    const profiled = wanted ? (this.setup?.profiled?.() ?? []) : [];
    if (profiled.length === 0) return task();
    await toggleWindows(profiled);
    try {
      return await task();
    } finally {
      await toggleWindows(profiled);
      this.profiledRoundTrips += units;
    }
  }

  /** Profile mode, once closed: what the profiled processes recorded in their windows. */
  profiles(): ProcessProfile[] {
    const dir = this.options.profile;
    if (!dir || this.failed || !this.setup?.profiled) return [];
    return this.setup.profiled().map((c) => readProcessProfile(path.join(dir, this.name), c.name, c.logFile, this.profiledRoundTrips));
  }

  private started(): { setup: PathSetup; conn: AppConnection } {
    if (!this.setup || !this.conn) throw new Error(`${this.name} was not started`);
    return { setup: this.setup, conn: this.conn };
  }

  /** Runs `task` unless the path has failed already; a failure is recorded with the last lines of the path's logs. */
  private async step(task: () => Promise<void>): Promise<void> {
    if (this.failed) return;
    try {
      await task();
    } catch (err) {
      const logs = (this.setup?.processes() ?? []).map((c) => `[${c.name}] ${c.logTail(2)}`).join(' | ');
      this.error = `${errorMessage(err)}${logs ? ` (logs: ${logs})` : ''}`;
      this.progress(`${this.name}: FAILED: ${this.error}`);
    }
  }

  /**
   * The app's connection once a first message has made it there and back: a path that accepts
   * the connection before it can carry data (the sidecar still closing the readiness probe's
   * session on the exclusive device) gets a few more tries.
   */
  private async connectWorking(setup: PathSetup): Promise<AppConnection> {
    let last: unknown;
    for (let attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
      const conn = await setup.connect();
      try {
        await roundTrips(conn.stream, this.options.messageBytes, 1, ROUND_TRIP_TIMEOUT_MS);
        return conn;
      } catch (err) {
        last = err;
        await conn.close();
        await sleep(200 * attempt);
      }
    }
    throw new Error(`no working connection after ${CONNECT_ATTEMPTS} attempts: ${errorMessage(last)}`);
  }
}
