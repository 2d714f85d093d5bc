import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** What every benchmark shares: where the repo is, and a run that leaves no child and no temp dir behind. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'devicemesh.js');
/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux architecture Node runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
const handedOut = new Set<number>();

/**
 * Whatever way the benchmark ends (done, failed, Ctrl-C), no child outlives it and no temp dir
 * stays behind.
 */
export function cleanUpOnExit(): void {
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
}

/** Kills `child` if the benchmark ends first; resolves when it exits. */
export function trackChild(child: ChildProcess): Promise<void> {
  children.add(child);
  return new Promise((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );
}

export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** A loopback port that was free a moment ago and not handed out before in this run. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** A client connection to 127.0.0.1:`port`, Nagle off (round trips are what the benchmarks time). */
export function connectLoopback(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.off('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Writes the machine-readable results to `out` and prints the report, saying where they went. */
export function writeResults(out: string, report: unknown, text: string): void {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`${text}\n\nresults: ${out}\n`);
}

/** Runs a benchmark's main as a script: its result is the exit status; a throw is a one-line error and 1. */
export function runMain(name: string, main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

/** What every benchmark report says of the machine it ran on. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryMB: number;
  node: string;
  platform: string;
  /** 1, 5 and 15 minute load averages when the run ended. */
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryMB: Math.round(os.totalmem() / (1024 * 1024)),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/**
 * user + system CPU seconds of this process's children that have exited and been waited for
 * (cutime and cstime of /proc/self/stat): the difference around one child's run is its CPU.
 */
export function exitedChildrenCpuSeconds(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  // Fields after "(comm)" start at field 3 (state); cutime is field 16 and cstime 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_SECOND;
}
