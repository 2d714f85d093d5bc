import { type ChildProcess, fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { CLOCK_TICKS_PER_SECOND, trackChild } from '../common/bench-run';

export { BIN, cleanUpOnExit, freePort, makeTempDir, REPO_ROOT, removeTempDir } from '../common/bench-run';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `check` every 50 ms until it returns something other than false/undefined; an error it
 * throws counts as "not yet". `hopeless`, if it returns an error, ends the wait at once with it.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  hopeless: () => Error | undefined = () => undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const fatal = hopeless();
    if (fatal) throw fatal;
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await sleep(50);
  }
}

/** True once something accepts TCP connections on 127.0.0.1:`port` (the probe connection is closed at once). */
export function accepts(where: number | string): Promise<boolean> {
  return new Promise((resolve) => {
    // A number is a loopback TCP port, a string a Unix socket's path.
    const socket = net.connect(typeof where === 'number' ? { host: '127.0.0.1', port: where } : { path: where }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** user + system CPU seconds of a live process, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)" start at field 3 (state); utime is field 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** A child process of the benchmark, its output appended to a log file, killed if the benchmark ends first. */
export class Child {
  readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly process: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = trackChild(process);
  }

  /** Runs `command` with stdout and stderr going to `logFile`. */
  static spawn(name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Child {
    const log = fs.openSync(logFile, 'a');
    const child = spawn(command, args, { stdio: ['ignore', log, log], env });
    fs.closeSync(log);
    return new Child(name, child, logFile);
  }

  /** Forks a Node module with an IPC channel, output to `logFile`. */
  static fork(name: string, modulePath: string, args: string[], logFile: string): Child {
    const log = fs.openSync(logFile, 'a');
    const child = fork(modulePath, args, { stdio: ['ignore', log, log, 'ipc'] });
    fs.closeSync(log);
    return new Child(name, child, logFile);
  }

  get pid(): number {
    return this.process.pid as number;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** An error saying it exited, with the end of its log, once it has; for waitFor's `hopeless`. */
  exitError(): Error | undefined {
    return this.running ? undefined : new Error(`${this.name} exited: ${this.logTail()}`);
  }

  /** The last lines of its log, for error messages. */
  logTail(lines = 5): string {
    const text = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
    return text.trim().split('\n').slice(-lines).join('\n') || '(no output)';
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.running) this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
