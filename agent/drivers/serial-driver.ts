import type { BindingInterface, BindingPortInterface, PortStatus } from '@serialport/bindings-interface';
import { DeviceError, errorMessage, UnsupportedError, ValidationError } from '../../src/errors';
import type { SerialConfig } from '../../src/proto/types';
import { type CommandReply, CommandOp, type DeviceCommand } from '../../src/socket-plane/device-command';
import { DeviceEventType, eventTimestamp, ModemLine } from '../../src/socket-plane/device-event';
import type { DeviceConfig, DeviceDriver, DeviceEventListener, DeviceHandle, DiscoveredDevice } from './device-driver';
import { DriverSettings } from './driver-settings';
import { EventLoopSerialStream } from './event-loop-serial-stream';
import { REOPEN_FIELDS, type SerialPortOptions, serialPortOptions } from './serial-options';
import type { SerialPortListing } from './sysfs-serial-ports';
import type { LineSettings } from './termios-readback';
import { usbDeviceId } from './usb-identity';

/** How often the modem lines are read while a port is open; Linux has no portable change notification for them. */
const DEFAULT_MODEM_POLL_MS = 100;
const DEFAULT_BREAK_MS = 250;
const MAX_BREAK_MS = 10_000;

/** How the kernel answers a modem-control ioctl on a tty without modem lines (a pty). */
const NO_MODEM_CONTROL = /Inappropriate ioctl|ENOTTY|Invalid argument|EINVAL/;

/** One line setting of SerialConfigure: its value in use, and the options with it changed (undefined: not a valid value). */
interface LineSetting {
  get(o: SerialPortOptions): number;
  set(o: SerialPortOptions, value: number): SerialPortOptions | undefined;
}

const PARITY_CODES: ReadonlyArray<SerialPortOptions['parity']> = ['none', 'odd', 'even', 'mark', 'space'];
const STOP_CODES: ReadonlyArray<SerialPortOptions['stopBits']> = [1, 2, 1.5];

/** RFC 2217's numbering, so that an RFC 2217 server passes values through unchanged. */
const LINE_SETTINGS: Readonly<Record<string, LineSetting>> = {
  baudRate: { get: (o) => o.baudRate, set: (o, v) => (Number.isInteger(v) && v > 0 && v <= 0xffffffff ? { ...o, baudRate: v } : undefined) },
  dataBits: { get: (o) => o.dataBits, set: (o, v) => (v === 5 || v === 6 || v === 7 || v === 8 ? { ...o, dataBits: v } : undefined) },
  parity: {
    get: (o) => PARITY_CODES.indexOf(o.parity) + 1,
    set: (o, v) => {
      const parity = PARITY_CODES[v - 1];
      return parity ? { ...o, parity } : undefined;
    },
  },
  stopBits: {
    get: (o) => STOP_CODES.indexOf(o.stopBits) + 1,
    set: (o, v) => {
      const stopBits = STOP_CODES[v - 1];
      return stopBits ? { ...o, stopBits } : undefined;
    },
  },
  flowControl: {
    get: (o) => (o.rtscts ? 3 : o.xon ? 2 : 1),
    set: (o, v) => (v >= 1 && v <= 3 ? { ...o, rtscts: v === 3, xon: v === 2, xoff: v === 2 } : undefined),
  },
};

/** Serial driver settings (beside the line settings, which come in DeviceConfig.serial). */
function serialSettings(settings: Readonly<Record<string, string>>): { modemPollMs: number } {
  const s = new DriverSettings('serial', settings);
  s.onlyKnown(['modemPollMs']);
  return { modemPollMs: s.integer('modemPollMs', DEFAULT_MODEM_POLL_MS, 0, 60_000) };
}

export interface SerialDriverOptions {
  /** Reads the line settings back from an open port; unset: the configuration reports what was asked. */
  readBack?: (path: string) => Promise<LineSettings>;
  /** The port listing; unset: the binding's own list(). */
  list?: () => Promise<SerialPortListing[]>;
}

/** A port of a listing as the register sees it; one with an identityError goes by its path, the reason in its labels. */
export function discoveredSerialPort(port: SerialPortListing): DiscoveredDevice {
  const labels: Record<string, string> = {};
  if (port.manufacturer) labels.manufacturer = port.manufacturer;
  if (port.product) labels.product = port.product;
  if (port.vendorId) labels.vendorId = port.vendorId;
  if (port.productId) labels.productId = port.productId;
  if (port.serialNumber) labels.serialNumber = port.serialNumber;
  if (port.usbPort) labels.usbPort = port.usbPort;
  if (port.identityError) labels.identityError = port.identityError;
  const deviceId = port.identityError ? undefined : usbDeviceId(port.vendorId, port.productId, port.serialNumber, port.usbPort);
  return { path: port.path, kind: 'DEVICE_KIND_SERIAL', ...(deviceId ? { deviceId } : {}), capabilities: ['serial', 'modem-lines', 'break'], labels };
}

/**
 * The serial driver: a port of a serialport binding, either the platform's (`autoDetect()` from
 * @serialport/bindings-cpp) or a simulated one, its bytes carried by an EventLoopSerialStream.
 */
export class SerialDriver implements DeviceDriver {
  readonly kind = 'DEVICE_KIND_SERIAL' as const;

  constructor(
    private readonly binding: BindingInterface,
    private readonly options: SerialDriverOptions = {},
  ) {}

  validate(config: DeviceConfig): void {
    serialPortOptions(config.serial);
    serialSettings(config.settings);
  }

  async list(): Promise<DiscoveredDevice[]> {
    return (await (this.options.list ?? (() => this.binding.list()))()).map(discoveredSerialPort);
  }

  async open(path: string, config: DeviceConfig): Promise<DeviceHandle> {
    const options = serialPortOptions(config.serial);
    const { modemPollMs } = serialSettings(config.settings);
    let port: BindingPortInterface;
    try {
      port = await this.binding.open({ path, ...options, lock: true });
    } catch (err) {
      throw new DeviceError(`cannot open ${path}: ${errorMessage(err)}`, { cause: err });
    }
    const handle = new SerialHandle(path, this.binding, new EventLoopSerialStream(path, port), options, modemPollMs, this.options.readBack);
    try {
      await handle.setLines(config.serial);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    return handle;
  }
}

function lineBits(status: PortStatus): number {
  const ri = (status as PortStatus & { ri?: boolean }).ri === true;
  return (status.cts ? ModemLine.cts : 0) | (status.dsr ? ModemLine.dsr : 0) | (status.dcd ? ModemLine.dcd : 0) | (ri ? ModemLine.ri : 0);
}

function lineNames(bits: number): string {
  return (Object.keys(ModemLine) as Array<keyof typeof ModemLine>).filter((name) => (bits & ModemLine[name]) !== 0).join(',');
}

/**
 * An open serial device. `stream` is one EventLoopSerialStream for the handle's whole life: a
 * setting serialport cannot change on an open port is applied by closing and reopening the
 * binding's port underneath it (see reopen()), so the sessions piped to the stream never notice.
 */
class SerialHandle implements DeviceHandle {
  private dtr: boolean | undefined;
  private rts: boolean | undefined;
  private brk = false;
  /** The port has no modem-control lines: DTR/RTS/BREAK are kept here only. */
  private virtualLines = false;
  /** The running update(), command or close(): they run one at a time, in call order. */
  private busy: Promise<unknown> = Promise.resolve();
  private listener: DeviceEventListener | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private lines: number | undefined;
  /** Why the modem lines cannot be read (a pty refuses the ioctl), once that is known. */
  private linesUnreadable: string | undefined;

  constructor(
    readonly path: string,
    private readonly binding: BindingInterface,
    readonly stream: EventLoopSerialStream,
    private applied: SerialPortOptions,
    private modemPollMs: number,
    private readonly readBack: ((path: string) => Promise<LineSettings>) | undefined,
  ) {
    stream.once('close', () => this.stopPolling());
  }

  onEvent(listener: DeviceEventListener): void {
    this.listener = listener;
    this.startPolling();
  }

  /**
   * Applies a changed configuration: the baud rate alone changes on the open port (serialport's
   * update()); data bits, parity, stop bits or flow control reopen the port with every new
   * setting. Either way the stream, its buffered writes and its readers carry on.
   */
  update(config: DeviceConfig): Promise<void> {
    return this.serialized(() => this.apply(config));
  }

  execute(command: DeviceCommand): Promise<CommandReply> {
    return this.serialized(() => this.run(command));
  }

  async configuration(): Promise<Record<string, string>> {
    const lines: Record<string, string> = {};
    if (this.dtr !== undefined) lines.dtr = String(this.dtr);
    if (this.rts !== undefined) lines.rts = String(this.rts);
    if (this.virtualLines) lines.lineControl = 'virtual (the port has no modem-control lines)';
    if (this.linesUnreadable) lines.modemLines = `unreadable: ${this.linesUnreadable}`;
    else if (this.lines !== undefined) lines.modemLines = lineNames(this.lines) || 'none';
    if (this.readBack && this.stream.isOpen) {
      try {
        return { ...(await this.readBack(this.path)), ...lines, source: 'device' };
      } catch (err) {
        lines.readBackError = errorMessage(err);
      }
    }
    const a = this.applied;
    const flowControl = a.rtscts ? 'rtscts' : a.xon ? 'xonxoff' : 'none';
    return { baudRate: String(a.baudRate), dataBits: String(a.dataBits), parity: a.parity, stopBits: String(a.stopBits), flowControl, ...lines, source: 'requested' };
  }

  close(): Promise<void> {
    this.stopPolling();
    return this.serialized(() => this.closeNow());
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.busy.then(task);
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async apply(config: DeviceConfig): Promise<void> {
    const { modemPollMs } = serialSettings(config.settings);
    await this.applyOptions(serialPortOptions(config.serial));
    await this.setLines(config.serial);
    if (modemPollMs !== this.modemPollMs) {
      this.modemPollMs = modemPollMs;
      this.stopPolling();
      this.startPolling();
    }
  }

  private async applyOptions(next: SerialPortOptions): Promise<void> {
    if (this.stream.destroyed) throw new DeviceError(`${this.path}: device is closed`);
    if (REOPEN_FIELDS.some((f) => next[f] !== this.applied[f])) {
      await this.reopen(next);
    } else if (next.baudRate !== this.applied.baudRate) {
      const port = this.stream.port;
      if (!port || !this.stream.isOpen) throw new DeviceError(`${this.path}: device is not open`);
      await this.device(port.update({ baudRate: next.baudRate }), `set baud rate ${next.baudRate}`);
      this.applied = { ...this.applied, baudRate: next.baudRate };
    }
  }

  /** SerialConfigure: one line setting in RFC 2217's numbering; 0 asks; answers the setting in use. */
  private async configure(target: string, value: number): Promise<number> {
    const field = LINE_SETTINGS[target];
    if (!field) throw new ValidationError('target', `"${target}" is not one of ${Object.keys(LINE_SETTINGS).join(', ')}`);
    if (value !== 0) {
      const next = field.set(this.applied, value);
      if (!next) throw new ValidationError('value', `${value} is not a valid ${target}`);
      await this.applyOptions(next);
    }
    return field.get(this.applied);
  }

  private async run(command: DeviceCommand): Promise<CommandReply> {
    const port = this.stream.port;
    if (!port || !this.stream.isOpen) throw new DeviceError(`${this.path}: device is not open`);
    const none: CommandReply = { value: 0, data: Buffer.alloc(0) };
    switch (command.op) {
      case CommandOp.SerialSetLine: {
        const { target } = command;
        if (target !== 'dtr' && target !== 'rts' && target !== 'brk') throw new ValidationError('target', `"${target}" is not dtr, rts or brk`);
        const on = command.value !== 0;
        await this.setLineState(target === 'dtr' ? on : (this.dtr ?? true), target === 'rts' ? on : (this.rts ?? true), target === 'brk' ? on : this.brk);
        return { value: on ? 1 : 0, data: Buffer.from(this.virtualLines ? 'virtual' : '') };
      }
      case CommandOp.SerialConfigure:
        return { value: await this.configure(command.target, command.value), data: Buffer.alloc(0) };
      case CommandOp.SerialGetLines:
        return this.getLines(port);
      case CommandOp.SerialBreak: {
        const ms = command.value === 0 ? DEFAULT_BREAK_MS : command.value;
        if (!(ms > 0 && ms <= MAX_BREAK_MS)) throw new ValidationError('value', `a break of ${ms} ms is not within 1..${MAX_BREAK_MS}`);
        await this.setLineState(this.dtr ?? true, this.rts ?? true, true);
        await new Promise((resolve) => setTimeout(resolve, ms));
        await this.setLineState(this.dtr ?? true, this.rts ?? true, false);
        return none;
      }
      case CommandOp.SerialFlush:
        await this.device(port.flush(), 'flush');
        return none;
      case CommandOp.SerialDrain:
        await this.device(this.stream.drain(), 'drain');
        return none;
      default:
        throw new UnsupportedError(`a serial device does not take ${CommandOp[command.op] ?? command.op}`);
    }
  }

  /**
   * The modem lines; a port without them (a pty) answers as a null-modem cable to a ready peer
   * would: CTS follows our RTS, DSR our DTR, carrier on. `data` says "virtual" then.
   */
  private async getLines(port: BindingPortInterface): Promise<CommandReply> {
    try {
      return { value: lineBits(await port.get()), data: Buffer.alloc(0) };
    } catch (err) {
      if (!NO_MODEM_CONTROL.test(errorMessage(err))) throw new DeviceError(`${this.path}: cannot read the modem lines: ${errorMessage(err)}`, { cause: err });
      const virtual = lineBits({ cts: this.rts ?? true, dsr: this.dtr ?? true, dcd: true });
      return { value: virtual, data: Buffer.from('virtual') };
    }
  }

  private async device<T>(op: Promise<T>, what: string): Promise<T> {
    try {
      return await op;
    } catch (err) {
      throw new DeviceError(`${this.path}: cannot ${what}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * Sets DTR, RTS and BREAK. A port without modem-control lines (a pty, some adapters) refuses the
   * ioctl: from then on the lines are kept as the port's virtual state, which is what a client that
   * set them reads back, so an app that insists on setting them still works.
   */
  private async setLineState(dtr: boolean, rts: boolean, brk: boolean): Promise<void> {
    const port = this.stream.port;
    if (!port) throw new DeviceError(`${this.path}: device is not open`);
    if (!this.virtualLines) {
      try {
        await port.set({ dtr, rts, brk });
      } catch (err) {
        if (!NO_MODEM_CONTROL.test(errorMessage(err))) {
          throw new DeviceError(`${this.path}: cannot ${brk ? 'send a break' : 'set DTR/RTS'}: ${errorMessage(err)}`, { cause: err });
        }
        this.virtualLines = true;
      }
    }
    this.dtr = dtr;
    this.rts = rts;
    this.brk = brk;
  }

  private startPolling(): void {
    if (!this.listener || this.modemPollMs === 0 || this.linesUnreadable || this.pollTimer || this.stream.destroyed) return;
    this.pollTimer = setInterval(() => this.pollLines(), this.modemPollMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  private pollLines(): void {
    const port = this.stream.port;
    // Not while a reopen has the port closed, and never two reads at once.
    if (this.polling || !port || !this.stream.isOpen) return;
    this.polling = true;
    port.get().then(
      (status) => {
        this.polling = false;
        const bits = lineBits(status);
        const before = this.lines;
        this.lines = bits;
        if (before === undefined || before === bits) return;
        this.listener?.({ type: DeviceEventType.ModemLines, timestampMs: eventTimestamp(), source: lineNames(before ^ bits), value: bits, data: Buffer.alloc(0) });
      },
      (err: unknown) => {
        this.polling = false;
        if (!this.stream.isOpen) return;
        // A pty or an adapter without modem lines refuses the ioctl: stop asking.
        this.linesUnreadable = errorMessage(err);
        this.stopPolling();
      },
    );
  }

  /**
   * Closes and reopens the binding's port under the same stream. The stream is detached first: the
   * write already in progress finishes (all its bytes in the kernel) and is drained to the line;
   * writes made meanwhile stay in the stream's buffer, with write() returning false past its
   * highWaterMark, and go out in order on the new port, where reading carries on too. Bytes the
   * device sends while the port is closed are lost, as on a UART. The lock is released for the
   * moment between close and open. A failed reopen destroys the stream with a DeviceError: its
   * owner sees 'error' and 'close', as for a failed device.
   */
  private async reopen(next: SerialPortOptions): Promise<void> {
    const stream = this.stream;
    if (!stream.port || !stream.isOpen) throw new DeviceError(`${this.path}: device is not open`);
    const old = await stream.detach();
    try {
      if (!old || stream.destroyed) throw new DeviceError('the device went away');
      await old.drain().catch(() => undefined); // a failed drain still leaves the write settled
      await old.close();
      const port = await this.binding.open({ path: this.path, ...next, lock: true });
      if (!stream.attach(port)) {
        await port.close().catch(() => undefined);
        throw new DeviceError('the device was closed meanwhile');
      }
      this.applied = next;
      // The line was reset by the reopen: DTR/RTS are set again by apply().
      this.dtr = this.rts = undefined;
    } catch (err) {
      const error = new DeviceError(`${this.path}: cannot reopen with the new settings: ${errorMessage(err)}`, { cause: err });
      if (old?.isOpen) await old.close().catch(() => undefined);
      stream.destroy(error);
      throw error;
    }
  }

  /** DTR/RTS are only touched when the configuration sets them: ptys and some adapters refuse the ioctl. */
  setLines(config: SerialConfig | null): Promise<void> {
    const dtr = config?.dtr;
    const rts = config?.rts;
    if ((dtr === undefined && rts === undefined) || (dtr === this.dtr && rts === this.rts)) return Promise.resolve();
    return this.setLineState(dtr ?? true, rts ?? true, false);
  }

  private closeNow(): Promise<void> {
    return this.stream.close();
  }
}
