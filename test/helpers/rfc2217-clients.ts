import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { IAC, SB, SE } from '../../src/rfc2217/telnet-codes';
import { type TelnetItem, TelnetParser } from '../../src/rfc2217/telnet-parser';
import { REPO_ROOT } from './processes';

/** Debian's python, which has python3-serial; the first python3 on PATH may not. */
const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(REPO_ROOT, 'test', 'tools', 'rfc2217_client.py');

/** True when pyserial (python3-serial) is installed for Debian's python. */
export function havePySerial(): boolean {
  return spawnSync(PYTHON, ['-c', 'import serial.rfc2217'], { stdio: 'ignore' }).status === 0;
}

export interface PyAnswer {
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** pyserial's rfc2217:// client in a child process (test/tools/rfc2217_client.py), one request at a time. */
export class PySerialClient {
  private readonly answers: Array<(answer: PyAnswer) => void> = [];
  private stderr = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    readline.createInterface({ input: child.stdout }).on('line', (line) => this.answers.shift()?.(JSON.parse(line) as PyAnswer));
    child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    child.once('exit', () => {
      for (const waiter of this.answers.splice(0)) waiter({ ok: false, error: `client exited: ${this.stderr}` });
    });
  }

  static start(): PySerialClient {
    return new PySerialClient(spawn(PYTHON, [CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /** Opens `rfc2217://127.0.0.1:<port><query>` with pyserial settings (baudrate, bytesize, parity, stopbits, rtscts …). */
  static open(port: number, settings: Record<string, unknown> = {}, query = ''): Promise<PySerialClient> {
    return PySerialClient.openWith({ url: `rfc2217://127.0.0.1:${port}${query}`, settings });
  }

  /** The same client on a Unix socket (a one-hop endpoint): pyserial's protocol code, another transport. */
  static openPath(socketPath: string, settings: Record<string, unknown> = {}): Promise<PySerialClient> {
    return PySerialClient.openWith({ url: 'rfc2217://localhost:1', unix: socketPath, settings });
  }

  private static async openWith(request: Record<string, unknown>): Promise<PySerialClient> {
    const client = PySerialClient.start();
    const answer = await client.call({ op: 'open', ...request });
    if (!answer.ok) {
      await client.close();
      throw new Error(`pyserial could not open the port: ${answer.error}`);
    }
    return client;
  }

  call(request: Record<string, unknown>): Promise<PyAnswer> {
    return new Promise((resolve) => {
      this.answers.push(resolve);
      this.child.stdin.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** Like call(), but a refusal is an exception. */
  async must(request: Record<string, unknown>): Promise<unknown> {
    const answer = await this.call(request);
    if (!answer.ok) throw new Error(`pyserial ${JSON.stringify(request)}: ${answer.error}`);
    return answer.value;
  }

  async write(data: Buffer): Promise<void> {
    await this.must({ op: 'write', hex: data.toString('hex') });
  }

  /** Reads until `n` bytes came or `timeoutS` passed without them. */
  async read(n: number, timeoutS = 10): Promise<Buffer> {
    return Buffer.from((await this.must({ op: 'read', n, timeout: timeoutS })) as string, 'hex');
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.call({ op: 'close' });
    this.child.stdin.end();
    await exited;
  }
}

/** A bare Telnet client for what pyserial cannot send: queries, masks, garbage. Sends nothing unasked. */
export class TelnetClient {
  readonly items: TelnetItem[] = [];
  data = Buffer.alloc(0);
  readonly closed: Promise<void>;
  private readonly parser = new TelnetParser();
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const item of this.parser.push(chunk)) {
        if (item.kind === 'data') this.data = Buffer.concat([this.data, item.data]);
        else this.items.push(item);
      }
      for (const wake of this.waiters) wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        resolve();
        for (const wake of this.waiters) wake();
      }),
    );
  }

  static connect(port: number): Promise<TelnetClient> {
    return TelnetClient.over(net.connect(port, '127.0.0.1'));
  }

  /** The same client on a Unix socket (a one-hop endpoint). */
  static connectPath(socketPath: string): Promise<TelnetClient> {
    return TelnetClient.over(net.connect({ path: socketPath }));
  }

  private static over(socket: net.Socket): Promise<TelnetClient> {
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new TelnetClient(socket));
      });
    });
  }

  send(bytes: number[] | Buffer): void {
    this.socket.write(Buffer.from(bytes));
  }

  /** Resolves with `check`'s first defined result, re-checked on every arrival. */
  until<T>(what: string, check: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        const got = check();
        if (got === undefined && !this.socket.destroyed) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        if (got === undefined) reject(new Error(`connection closed while waiting for ${what}`));
        else resolve(got);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(wake);
      wake();
    });
  }

  /** COM-PORT-OPTION subnegotiation payloads received (after the option byte), in order. */
  comPort(): Buffer[] {
    return this.items.flatMap((i) => (i.kind === 'subnegotiation' && i.option === 44 ? [i.payload] : []));
  }

  /** Sends COM-PORT-OPTION `command` with `value` and resolves with the value of the next answer (command + 100). */
  async request(command: number, value: number[]): Promise<Buffer> {
    const seen = this.comPort().length;
    const body = Buffer.from([44, command, ...value]);
    const escaped = Buffer.from([...body].flatMap((b) => (b === IAC ? [IAC, IAC] : [b])));
    this.send(Buffer.concat([Buffer.from([IAC, SB]), escaped, Buffer.from([IAC, SE])]));
    const answered = (): Buffer | undefined => this.comPort().slice(seen).find((p) => p[0] === command + 100);
    const answer = await this.until(`the answer to COM-PORT-OPTION ${command}`, answered);
    return answer.subarray(1);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
