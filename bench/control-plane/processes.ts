import { type ChildProcess, fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AdsProtocol } from '../../src/xds/protocols';
import { BIN, CLOCK_TICKS_PER_SECOND, freePort, trackChild } from '../common/bench-run';
import type { Expectation, ParentMessage, ProxySpec, WorkerMessage } from './messages';

const WORKER = path.join(__dirname, 'proxy-worker.js');
export { cleanUpOnExit, makeTempDir, REPO_ROOT, removeTempDir } from '../common/bench-run';

/** Asks a child to end (by `signal`, or already asked otherwise) and kills it after `graceMs`. */
async function stopChild(child: ChildProcess, exited: Promise<void>, graceMs: number, signal?: NodeJS.Signals): Promise<void> {
  if (signal && child.exitCode === null && child.signalCode === null) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    http
      .get(url, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', () => resolve(0));
  });
}

export interface ProcUsage {
  rssBytes: number;
  /** VmHWM: the peak resident set since the process started. */
  peakRssBytes: number;
  /** utime + stime. */
  cpuSeconds: number;
}

/** `devicemesh control-plane` as its own process, the way an operator runs it. */
export class ControlPlaneProcess {
  private constructor(
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
    private readonly logFile: string,
    readonly grpcAddress: string,
  ) {}

  /** Starts it on free loopback ports with its log in `logFile`; resolves once /ready answers 200. */
  static async start(dataDir: string, logFile: string): Promise<ControlPlaneProcess> {
    const grpcAddress = `127.0.0.1:${await freePort()}`;
    const adminAddress = `127.0.0.1:${await freePort()}`;
    const log = fs.openSync(logFile, 'a');
    // Plaintext: the simulated proxies (thousands of node ids in a few workers) have no certificates; this bench measures xDS fan-out.
    const args = ['control-plane', '--listen', grpcAddress, '--admin', adminAddress, '--data-dir', dataDir, '--insecure'];
    const child = spawn(process.execPath, [BIN, ...args], {
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    const cp = new ControlPlaneProcess(child, trackChild(child), logFile, grpcAddress);
    const deadline = Date.now() + 30_000;
    while ((await httpStatus(`http://${adminAddress}/ready`)) !== 200) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await cp.stop();
        throw new Error(`control plane did not become ready: ${cp.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return cp;
  }

  usage(): ProcUsage {
    const pid = this.child.pid as number;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14 and stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM'), cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND };
  }

  /** The last lines of its log, for error messages. */
  logTail(lines = 5): string {
    const text = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
    return text.trim().split('\n').slice(-lines).join('\n') || '(no output)';
  }

  stop(): Promise<void> {
    return stopChild(this.child, this.exited, 10_000, 'SIGTERM');
  }
}

/** A forked proxy-worker.js hosting some proxies, driven over IPC. */
export class ProxyWorker {
  private nextRequestId = 1;
  private readonly pending = new Map<number, { resolve(times: number[]): void; reject(err: Error): void }>();
  private onStart: { resolve(ready: { connectMs: number; protocols: AdsProtocol[] }): void; reject(err: Error): void } | undefined;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(private readonly name: string) {
    this.child = fork(WORKER, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Proxies log only errors: 1,000 clients' warnings would drown the table.
      env: { ...process.env, DEVICEMESH_LOG_LEVEL: 'error' },
    });
    this.exited = trackChild(this.child);
    this.child.on('message', (msg: WorkerMessage) => this.onMessage(msg));
    this.child.once('exit', (code, signal) => {
      const err = new Error(`${this.name} exited (${signal ?? code})`);
      this.onStart?.reject(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  /**
   * Connects the proxies; resolves with how long it took until every one of them had applied its
   * first configuration, and fails if any of them is not speaking `protocol`.
   */
  async start(address: string, protocol: AdsProtocol, proxies: ProxySpec[], timeoutMs: number): Promise<number> {
    const ready = await new Promise<{ connectMs: number; protocols: AdsProtocol[] }>((resolve, reject) => {
      this.onStart = { resolve, reject };
      this.send({ type: 'start', address, protocol, proxies, timeoutMs });
    });
    if (ready.protocols.some((p) => p !== protocol)) throw new Error(`${this.name}: proxies asked for ${protocol} speak ${ready.protocols.join(' and ')}`);
    return ready.connectMs;
  }

  /** Resolves with the CLOCK_MONOTONIC ms at which each sidecar applied the expected content. */
  awaitChange(since: number, workloads: string[] | 'all', expect: Expectation, timeoutMs: number): Promise<number[]> {
    const requestId = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      this.send({ type: 'await', requestId, since, workloads, expect, timeoutMs });
    });
  }

  stop(): Promise<void> {
    if (this.child.connected) this.send({ type: 'stop' });
    return stopChild(this.child, this.exited, 5_000);
  }

  private send(msg: ParentMessage): void {
    this.child.send(msg);
  }

  private onMessage(msg: WorkerMessage): void {
    if (msg.type === 'ready' || msg.type === 'failed') {
      const start = this.onStart;
      this.onStart = undefined;
      if (msg.type === 'ready') start?.resolve(msg);
      else start?.reject(new Error(`${this.name}: ${msg.message}`));
      return;
    }
    const p = this.pending.get(msg.requestId);
    this.pending.delete(msg.requestId);
    if (msg.type === 'awaited') p?.resolve(msg.times);
    else p?.reject(new Error(`${this.name}: ${msg.message}`));
  }
}
