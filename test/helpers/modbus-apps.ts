import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../agent/drivers/device-driver';
import { SerialDriver } from '../../agent/drivers/serial-driver';
import { REPO_ROOT, stopChild, waitFor } from './processes';

/** Debian's python, which has python3-pymodbus; the first python3 on PATH may not. */
const PYTHON = '/usr/bin/python3';
const TOOLS = path.join(REPO_ROOT, 'test', 'tools');

/** True when pymodbus and its serial server's serial_asyncio are installed for Debian's python. */
export function havePymodbus(): boolean {
  return spawnSync(PYTHON, ['-c', 'import pymodbus.client, serial_asyncio'], { stdio: 'ignore' }).status === 0;
}

/** What test/tools/modbus_client.py prints for `poll`. */
export interface PollResult {
  unit: number;
  requests: number;
  ok: number;
  exceptions: Record<string, number>;
  errors: number;
  first_error?: string;
  mismatches: string[];
}

/** What it prints for `read` and `write`. */
export interface OneResult {
  registers?: number[];
  exception?: number | null;
  error?: string;
  seconds?: number;
  transaction_id?: number;
  unit?: number;
}

/** Runs pymodbus's TCP client (test/tools/modbus_client.py) as an app of its own and returns its JSON. */
export function modbusClient<T extends PollResult | OneResult>(mode: 'poll' | 'read' | 'write', port: number, options: Record<string, number> = {}): Promise<T> {
  const args = [path.join(TOOLS, 'modbus_client.py'), mode, '--port', String(port)];
  for (const [key, value] of Object.entries(options)) args.push(`--${key}`, String(value));
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`modbus_client.py ${mode} exited ${code}: ${out}${err}`));
      }
    });
  });
}

/** A write the slave executed, as it printed it. */
export interface SlaveWrite {
  write: number;
  function: number;
  address: number;
  values: number[];
}

/** pymodbus's RTU server (test/tools/modbus_rtu_slave.py) on a serial port: units answer, writes are logged. */
export class ModbusSlave {
  readonly writes: SlaveWrite[] = [];
  private ready = false;

  private constructor(private readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') this.ready = true;
      else if (line.startsWith('{')) this.writes.push(JSON.parse(line) as SlaveWrite);
    });
  }

  static async start(port: string, units: readonly number[], baud = 115200): Promise<ModbusSlave> {
    const child = spawn(PYTHON, [path.join(TOOLS, 'modbus_rtu_slave.py'), '--port', port, '--baud', String(baud), '--units', units.join(',')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const slave = new ModbusSlave(child);
    await waitFor(`the Modbus slave on ${port}`, () => slave.ready || (child.exitCode !== null ? Promise.reject(new Error(`the slave exited ${child.exitCode}`)) : false), 15_000);
    return slave;
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}

/**
 * A stretch of wire between the bus's two ends (two ptys), relaying bytes both ways, that can flip
 * a bit in the slave's next response: a corrupted frame on the wire, as noise would make it.
 */
export class WireTap {
  corrupted = 0;
  private corruptAt = -1;
  private responseBytes = 0;

  private constructor(
    private readonly master: DeviceHandle,
    private readonly slave: DeviceHandle,
  ) {
    master.stream.on('data', (chunk: Buffer) => {
      this.responseBytes = 0;
      slave.stream.write(chunk);
    });
    slave.stream.on('data', (chunk: Buffer) => {
      // Byte 3 of a read response is register data: flipped, only the CRC can tell.
      const at = this.corruptAt - this.responseBytes;
      if (this.corruptAt >= 0 && at >= 0 && at < chunk.length) {
        chunk[at] = (chunk[at] as number) ^ 0x01;
        this.corruptAt = -1;
        this.corrupted++;
      }
      this.responseBytes += chunk.length;
      master.stream.write(chunk);
    });
    for (const h of [master, slave]) h.stream.on('error', () => undefined);
  }

  /** Opens the master's side (the far end of the agent's pty) and the slave's side (a pty whose peer the slave holds). */
  static async open(masterSide: string, slaveSide: string): Promise<WireTap> {
    const driver = new SerialDriver(autoDetect());
    const settings = { serial: null, settings: {} };
    return new WireTap(await driver.open(masterSide, settings), await driver.open(slaveSide, settings));
  }

  /** Flips a bit of byte 3 of the next response the slave sends. */
  corruptNextResponse(): void {
    this.corruptAt = 3;
  }

  async close(): Promise<void> {
    await Promise.all([this.master.close(), this.slave.close()].map((p) => p.catch(() => undefined)));
  }
}
