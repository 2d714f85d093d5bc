import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { clientCredentialEnv, clientCredentialFiles } from '../../src/security/client-credential-files';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'devicemesh.js');
export const OUTPUT_DIR = path.join(REPO_ROOT, 'test-output');

const handedOut = new Set<number>();
/** Mocha's parallel workers (ids 0, 1, …) each take the ports of their own residue class. */
const PORT_CLASSES = 8;
const portClass = process.env.MOCHA_WORKER_ID === undefined ? undefined : Number(process.env.MOCHA_WORKER_ID) % PORT_CLASSES;

/**
 * A port that was free a moment ago on 127.0.0.1, and not handed out before in this test run:
 * the kernel may offer a just-closed port again, and two processes of one test must not get the
 * same one. Under `mocha --parallel` a worker takes only ports of its own class, so that two test
 * files running at once never get the same port between its check here and a process's bind.
 */
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
    if (!handedOut.has(port) && (portClass === undefined || port % PORT_CLASSES === portClass)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** SIGTERMs a child that is still running and resolves once it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Secure control planes started through MeshProcess, by gRPC port: their data directories. */
const controlPlanes = new Map<number, string>();
const TOKEN_DIR = path.join(os.tmpdir(), `devicemesh-test-tokens-${process.pid}`);
let tokenFiles = 0;

function flagValue(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

/** A process's setting as it will see it: its flag, else the key of its `--config` file (flags win, as in the product). */
function settingOf(args: readonly string[], name: string): string | undefined {
  const flag = flagValue(args, name);
  if (flag !== undefined) return flag;
  const config = flagValue(args, 'config');
  if (config === undefined) return undefined;
  const file = parse(fs.readFileSync(config, 'utf8')) as Record<string, unknown> | null;
  const value = file?.[name];
  return value === undefined || value === null ? undefined : String(value);
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** The CLI environment that reaches a secure control plane with its data directory: its CA bundle and the operator credential. */
export function meshEnv(dataDir: string): NodeJS.ProcessEnv {
  return clientCredentialEnv(dataDir);
}

/** What an in-test ControlPlaneClient needs for the secure control plane with data directory `dataDir`. */
export function operatorSecurity(dataDir: string): { caPem: string; operatorToken: string } {
  return {
    caPem: fs.readFileSync(clientCredentialFiles(dataDir).caFile, 'utf8'),
    operatorToken: fs.readFileSync(clientCredentialFiles(dataDir).operatorTokenFile, 'utf8').trim(),
  };
}

/** The data directory of the secure control plane serving `address`, if one was started here. */
export function controlPlaneDataDir(address: string): string | undefined {
  return controlPlanes.get(portOf(address));
}

/**
 * Makes a join token for `kind`/`id` with the CLI (`devicemesh token create`), retrying until the
 * control plane at `address` answers.
 */
export async function createToken(address: string, kind: 'host' | 'workload', id: string, timeoutMs = 30_000): Promise<string> {
  const dataDir = controlPlaneDataDir(address);
  if (!dataDir) throw new Error(`no secure control plane was started at ${address} through MeshProcess`);
  return waitFor(
    `a join token for ${kind} ${id}`,
    async () => {
      if (!fs.existsSync(clientCredentialFiles(dataDir).operatorTokenFile)) return undefined;
      const r = await cliAsync(['token', 'create', `--${kind}`, id, '--control-plane', address], meshEnv(dataDir));
      if (r.code !== 0) throw new Error(r.stderr.trim());
      return r.stdout.trim();
    },
    timeoutMs,
  );
}

/**
 * Secure by default: a control plane is remembered with its data directory; an agent or a sidecar
 * without --token, --token-file, --identity-dir or --insecure (as a flag or in its --config file) gets a
 * --token-file that is filled with a token made through the CLI once the control plane answers
 * (the process waits for it). Settings are read from the flags and the --config file alike.
 */
function secureArgs(args: readonly string[]): { args: string[]; provision?: (cancelled: () => boolean) => Promise<void> } {
  const [command] = args;
  const explicit = ['insecure', 'token', 'token-file', 'identity-dir'].some(
    (f) => args.some((a) => a === `--${f}` || a.startsWith(`--${f}=`)) || settingOf(args, f) !== undefined,
  );
  if (command === 'control-plane') {
    if (!explicit) {
      const listen = settingOf(args, 'listen') ?? '127.0.0.1:15010';
      controlPlanes.set(portOf(listen), path.resolve(settingOf(args, 'data-dir') ?? './devicemesh-data'));
    }
    return { args: [...args] };
  }
  if ((command !== 'agent' && command !== 'sidecar') || explicit) return { args: [...args] };
  const kind = command === 'agent' ? 'host' : 'workload';
  const id = settingOf(args, command === 'agent' ? 'host-id' : 'workload-id') ?? '';
  const address = settingOf(args, 'control-plane') ?? '127.0.0.1:15010';
  fs.mkdirSync(TOKEN_DIR, { recursive: true });
  const tokenFile = path.join(TOKEN_DIR, `${kind}-${id}-${++tokenFiles}.token`);
  const provision = async (cancelled: () => boolean): Promise<void> => {
    const token = await waitFor('the control plane to make a token', async () => {
      if (cancelled()) return 'cancelled';
      try {
        return await createToken(address, kind, id, 2000);
      } catch {
        return undefined;
      }
    }, 60_000);
    if (cancelled()) return;
    fs.writeFileSync(`${tokenFile}.tmp`, token);
    fs.renameSync(`${tokenFile}.tmp`, tokenFile);
  };
  return { args: [...args, '--token-file', tokenFile], provision };
}

/** A devicemesh process started through the CLI, its output kept in test-output/. */
export class MeshProcess {
  private out = '';
  readonly exited: Promise<number | null>;
  /** Making its join token, for an agent or sidecar started secure. */
  provisioning: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    fs.mkdirSync(OUTPUT_DIR, { recursive: true });
    const log = fs.createWriteStream(path.join(OUTPUT_DIR, `${name}.log`), { flags: 'a' });
    const keep = (chunk: Buffer): void => {
      this.out += chunk.toString();
      log.write(chunk);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Starts `devicemesh args…`, run through `wrapper` when given (e.g. `ip netns exec NS`). */
  static start(name: string, args: string[], env: NodeJS.ProcessEnv = {}, wrapper: readonly string[] = []): MeshProcess {
    const secure = secureArgs(args);
    const command = [...wrapper, process.execPath, BIN, ...secure.args];
    const child = spawn(command[0] as string, command.slice(1), {
      env: { ...process.env, DEVICEMESH_LOG_LEVEL: 'debug', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const p = new MeshProcess(name, child);
    if (secure.provision) {
      p.provisioning = secure.provision(() => p.stopped || child.exitCode !== null || child.signalCode !== null).catch((err: unknown) => {
        p.out += `\n[test helper] provisioning a token failed: ${(err as Error).message}\n`;
      });
    }
    return p;
  }

  output(): string {
    return this.out;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.stopped = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(timer);
    await this.provisioning;
    return code;
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CA and operator credential of the secure control plane a CLI command names (by --control-plane or its default), unless told otherwise. */
function cliEnv(args: readonly string[], env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (args.includes('--insecure') || env.DEVICEMESH_CA_FILE !== undefined || args.includes('--ca-file')) return env;
  const address = flagValue(args, 'control-plane') ?? env.DEVICEMESH_CONTROL_PLANE ?? '127.0.0.1:15010';
  const dataDir = controlPlaneDataDir(address);
  return dataDir ? { ...meshEnv(dataDir), ...env } : env;
}

/** Runs `node script args…` to its end without blocking the event loop, its output collected; killed after `timeoutMs` if given. */
export function runScript(script: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs?: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs one CLI command without blocking the event loop. */
export function cliAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runScript(BIN, args, { ...process.env, ...cliEnv(args, env) }, 20_000);
}

/** Runs one short CLI command to completion. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, input?: string): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...cliEnv(args, env) },
    input,
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A TCP client to 127.0.0.1:`port` from `localAddress`, reading and discarding: resolves once connected, with a promise of its close; rejects if it cannot connect. */
export async function dialTcp(port: number, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress });
  socket.resume();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  // A reset later (a refusal) is what the tests look for, not a failure.
  socket.on('error', () => undefined);
  return { socket, closed };
}

export function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time: a kept-alive one the server timed out while a spawnSync CLI
    // call blocked this process would be reused and answer "socket hang up".
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}
