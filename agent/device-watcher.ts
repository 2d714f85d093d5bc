import { EventEmitter } from 'node:events';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { PortInfo } from '@serialport/bindings-interface';
import { errorMessage, ValidationError } from '../src/errors';
import type { Logger } from '../src/log';

/** A `--watch` glob split into its literal directory and the pattern of the last segment. */
export interface CompiledGlob {
  glob: string;
  dir: string;
  pattern: RegExp;
}

/** Compiles a glob whose wildcards ('*', '?') are all in its last path segment. */
export function compileGlob(glob: string): CompiledGlob {
  const absolute = path.resolve(glob);
  const dir = path.dirname(absolute);
  const base = path.basename(absolute);
  if (/[*?]/.test(dir)) throw new ValidationError('--watch', `"${glob}": wildcards are only allowed in the last path segment`);
  if (!base) throw new ValidationError('--watch', `"${glob}" names no file`);
  const source = base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return { glob, dir, pattern: new RegExp(`^${source}$`) };
}

/** The stable id of a device: USB vendor:product:serial when known, else its port path. */
export function deviceIdOf(devicePath: string, usb: PortInfo | undefined): string {
  if (usb?.vendorId && usb.productId && usb.serialNumber) return `usb-${usb.vendorId}:${usb.productId}:${usb.serialNumber}`;
  return devicePath;
}

export interface DeviceWatcherOptions {
  globs: readonly string[];
  log: Logger;
  /** USB identities of the ports (SerialPort.list()); optional, and allowed to fail. */
  list?: () => Promise<PortInfo[]>;
  intervalMs?: number;
}

/**
 * Finds devices by polling the `--watch` globs. Anything that exists and is not a directory
 * counts, symlinks included (a socat `link=` or a /dev/serial/by-id name): the device's path is
 * the watched path itself.
 *
 * Events: `added` (path, deviceId), `removed` (path, deviceId).
 */
export class DeviceWatcher extends EventEmitter {
  private readonly globs: CompiledGlob[];
  private readonly intervalMs: number;
  private readonly present = new Map<string, string>();
  private readonly reported = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(private readonly options: DeviceWatcherOptions) {
    super();
    this.globs = options.globs.map(compileGlob);
    this.intervalMs = options.intervalMs ?? 300;
  }

  /** Scans once (so devices present at start are known when this resolves), then keeps polling. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.scan();
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** path → device id of what is present now. */
  devices(): Map<string, string> {
    return new Map(this.present);
  }

  private schedule(): void {
    if (this.stopped) return;
    // A timeout after each scan, not an interval: a slow scan never overlaps the next.
    this.timer = setTimeout(() => {
      this.scan().then(
        () => this.schedule(),
        (err: unknown) => {
          this.warnOnce('scan', 'device scan failed', err);
          this.schedule();
        },
      );
    }, this.intervalMs);
  }

  private async scan(): Promise<void> {
    const found = new Set<string>();
    for (const g of this.globs) {
      let names: string[];
      try {
        names = await fs.readdir(g.dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.warnOnce(`readdir ${g.dir}`, 'cannot read watched directory', err);
        continue;
      }
      for (const name of names) {
        if (!g.pattern.test(name)) continue;
        const p = path.join(g.dir, name);
        if (found.has(p)) continue;
        try {
          // stat follows symlinks: a dangling link (its pty gone) is no device.
          if (!(await fs.stat(p)).isDirectory()) found.add(p);
        } catch {
          // Vanished between readdir and stat, or a dangling link.
        }
      }
    }
    if (this.stopped) return;
    for (const [p, id] of [...this.present]) {
      if (found.has(p)) continue;
      this.present.delete(p);
      this.options.log.info({ path: p, deviceId: id }, 'device removed');
      this.emit('removed', p, id);
    }
    const added = [...found].filter((p) => !this.present.has(p));
    if (added.length === 0) return;
    const ports = await this.usbPorts();
    for (const p of added) {
      if (this.stopped) return;
      const id = deviceIdOf(p, await this.usbInfo(p, ports));
      this.present.set(p, id);
      this.options.log.info({ path: p, deviceId: id }, 'device added');
      this.emit('added', p, id);
    }
  }

  /** Asked only when something new appears: on Linux it spawns udevadm. */
  private async usbPorts(): Promise<PortInfo[]> {
    if (!this.options.list) return [];
    try {
      return await this.options.list();
    } catch (err) {
      // Typically udevadm missing (ENOENT) in a container: devices then go by their path.
      this.warnOnce('list', 'cannot list USB identities of ports; devices are identified by path', err);
      return [];
    }
  }

  private async usbInfo(devicePath: string, ports: PortInfo[]): Promise<PortInfo | undefined> {
    if (ports.length === 0) return undefined;
    let real = devicePath;
    try {
      real = await fs.realpath(devicePath);
    } catch {
      // Gone already; the next scan reports it removed.
    }
    return ports.find((port) => port.path === real || port.path === devicePath);
  }

  /** Logs a recurring problem once per kind, not every 300 ms. */
  private warnOnce(key: string, message: string, err: unknown): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.options.log.warn({ error: errorMessage(err), globs: this.options.globs }, message);
  }
}
