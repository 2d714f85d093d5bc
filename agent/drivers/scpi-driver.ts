import { autoDetect } from '@serialport/bindings-cpp';
import type { BindingInterface } from '@serialport/bindings-interface';
import { DeviceError, errorMessage, UnsupportedError, ValidationError } from '../../src/errors';
import type { DeviceKind } from '../../src/proto/types';
import { type CommandReply, CommandOp, type DeviceCommand } from '../../src/socket-plane/device-command';
import { DeviceEventType, eventTimestamp } from '../../src/socket-plane/device-event';
import { ByteLessStream } from './byte-less-stream';
import { deviceDirectoryEntries } from './device-directory';
import type { DeviceConfig, DeviceDriver, DeviceEventListener, DeviceHandle, DiscoveredDevice } from './device-driver';
import { DriverSettings } from './driver-settings';
import { answerNumber, parseIdentity, parseScpiError, type ScpiIdentity } from './scpi-answer';
import { describeCommand, ScpiLine, type ScpiLineOptions, type ScpiTurn, type TransportOpener } from './scpi-line';
import { openSerial, openUsbtmc, type ScpiTransportKind } from './scpi-transport';
import { type SerialPortOptions, serialPortOptions } from './serial-options';
import { readSysfsAttribute } from './sysfs-attribute';
import { usbDeviceId } from './usb-identity';

const KNOWN_SETTINGS = ['transport', 'terminator', 'timeoutMs', 'checkErrors'] as const;
/** Written as escapes in a binding ("\\n") or as the characters themselves. */
const TERMINATORS: Readonly<Record<string, string>> = { '\\n': '\n', '\\r\\n': '\r\n', '\\r': '\r', '\n': '\n', '\r\n': '\r\n', '\r': '\r' };
/** SCPI error queues hold a few dozen entries at most; more reads than this means an instrument that never says 0. */
const MAX_ERROR_READS = 32;
const SYST_ERR = Buffer.from('SYST:ERR?');

export interface ScpiSettings {
  transport: ScpiTransportKind;
  terminator: string;
  timeoutMs: number;
  checkErrors: boolean;
}

function escapeTerminator(text: string): string {
  return text.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

/** Reads the driver's settings for the device at `path` (its name picks the default transport). */
export function scpiSettings(path: string, config: DeviceConfig): ScpiSettings {
  const settings = new DriverSettings('scpi', config.settings);
  settings.onlyKnown(KNOWN_SETTINGS);
  const text = settings.string('terminator', '\\n');
  const terminator = TERMINATORS[text];
  if (terminator === undefined) {
    throw new ValidationError('settings.terminator', `"${escapeTerminator(text)}" is not one of \\n, \\r\\n, \\r`);
  }
  return {
    transport: settings.oneOf<ScpiTransportKind>('transport', ['usbtmc', 'serial'], /usbtmc/.test(path) ? 'usbtmc' : 'serial'),
    terminator,
    timeoutMs: settings.integer('timeoutMs', 2000, 10, 600_000),
    checkErrors: settings.boolean('checkErrors', false),
  };
}

function lineOptions(settings: ScpiSettings): ScpiLineOptions {
  return { terminator: Buffer.from(settings.terminator, 'latin1'), timeoutMs: settings.timeoutMs };
}

/** The command of a ScpiQuery/ScpiWrite: its data, less a terminator the sender added. */
function commandText(data: Buffer, terminator: string): Buffer {
  const end = Buffer.from(terminator, 'latin1');
  const terminated = data.length >= end.length && data.subarray(data.length - end.length).equals(end);
  const command = terminated ? data.subarray(0, data.length - end.length) : data;
  if (command.length === 0) throw new ValidationError('data', 'the SCPI command is empty');
  return command;
}

export interface ScpiDriverOptions {
  /** serialport binding of the serial transport; default: the platform's (autoDetect()). */
  binding?: BindingInterface;
  /** Where sysfs is, for list(); tests point it at a temporary tree. */
  sysRoot?: string;
}

/**
 * Lab instruments speaking SCPI over USBTMC (/dev/usbtmcN) or a serial line. Their traffic is
 * commands (ScpiQuery, ScpiWrite), so the handle's byte stream is a ByteLessStream: raw bytes
 * interleaved with the driver's own queries would be taken for their answers.
 */
export class ScpiDriver implements DeviceDriver {
  readonly kind: DeviceKind = 'DEVICE_KIND_LAB_CARD';
  private readonly binding: BindingInterface;
  private readonly sysRoot: string;

  constructor(options: ScpiDriverOptions = {}) {
    this.binding = options.binding ?? autoDetect();
    this.sysRoot = options.sysRoot ?? '/sys';
  }

  validate(config: DeviceConfig): void {
    scpiSettings('', config);
    if (config.serial) serialPortOptions(config.serial);
  }

  async open(path: string, config: DeviceConfig): Promise<DeviceHandle> {
    const settings = scpiSettings(path, config);
    const serial = settings.transport === 'serial' ? serialPortOptions(config.serial) : null;
    const handle = new ScpiHandle(path, settings, serial, this.binding);
    await handle.start();
    return handle;
  }

  /** The kernel's usbtmc devices, with the USB identity of each; serial instruments are not told apart from other serial ports. */
  async list(): Promise<DiscoveredDevice[]> {
    const dir = `${this.sysRoot}/class/usbmisc`;
    const names = await deviceDirectoryEntries(dir);
    const usbtmc = names.filter((n) => /^usbtmc\d+$/.test(n)).sort();
    return Promise.all(usbtmc.map((name) => this.describe(name)));
  }

  private async describe(name: string): Promise<DiscoveredDevice> {
    // device is a symlink to the usbtmc interface; its parent, resolved by the kernel, is the USB device.
    const usb = `${this.sysRoot}/class/usbmisc/${name}/device/..`;
    const fields = ['idVendor', 'idProduct', 'manufacturer', 'product', 'serial'] as const;
    const values = await Promise.all(fields.map((f) => readSysfsAttribute(`${usb}/${f}`)));
    const labels: Record<string, string> = {};
    fields.forEach((f, i) => {
      const value = values[i];
      if (value !== undefined) labels[f] = value;
    });
    const { idVendor, idProduct, serial } = labels;
    const deviceId = usbDeviceId(idVendor, idProduct, serial);
    return { path: `/dev/${name}`, kind: this.kind, ...(deviceId ? { deviceId } : {}), capabilities: ['scpi', 'usbtmc'], labels };
  }
}

class ScpiHandle implements DeviceHandle {
  readonly stream = new ByteLessStream('a SCPI instrument');
  private listener: DeviceEventListener | null = null;
  private line: ScpiLine | null = null;
  private idn = '';
  private identity: ScpiIdentity | null = null;

  constructor(
    readonly path: string,
    private settings: ScpiSettings,
    private serial: SerialPortOptions | null,
    private readonly binding: BindingInterface,
  ) {}

  /** Opens the transport and asks *IDN?: a device that does not answer is no SCPI instrument, or has the wrong settings. */
  async start(): Promise<void> {
    const line = await ScpiLine.open(lineOptions(this.settings), this.opener(this.settings.transport, this.serial), (err) => this.gone(err));
    this.line = line;
    try {
      await line.turn(async (turn) => {
        // With checkErrors, errors left from before would be blamed on the first write.
        if (this.settings.checkErrors) await turn.write(Buffer.from('*CLS'));
        this.idn = (await turn.query(Buffer.from('*IDN?'))).toString('latin1');
      });
    } catch (err) {
      await line.close();
      this.stream.destroy();
      const hint = '(check its transport, terminator and line settings)';
      throw new DeviceError(`cannot open ${this.path}: ${errorMessage(err)} ${hint}`, { cause: err });
    }
    try {
      this.identity = parseIdentity(Buffer.from(this.idn, 'latin1'));
    } catch {
      // Not four fields: configuration() reports the answer as it came.
    }
  }

  private opener(transport: ScpiTransportKind, serial: SerialPortOptions | null): TransportOpener {
    if (transport === 'usbtmc') return (sink) => openUsbtmc(this.path, sink);
    const options = serial ?? serialPortOptions(null);
    return (sink) => openSerial(this.path, options, this.binding, sink);
  }

  private get live(): ScpiLine {
    if (!this.line || this.stream.destroyed) throw new DeviceError(`${this.path}: the instrument is closed`);
    return this.line;
  }

  onEvent(listener: DeviceEventListener): void {
    this.listener = listener;
  }

  async update(config: DeviceConfig): Promise<void> {
    const next = scpiSettings(this.path, config);
    const serial = next.transport === 'serial' ? serialPortOptions(config.serial) : null;
    const reopen = next.transport !== this.settings.transport || !sameLine(serial, this.serial);
    await this.live.reconfigure(lineOptions(next), reopen ? this.opener(next.transport, serial) : undefined);
    this.settings = next;
    this.serial = serial;
  }

  async execute(command: DeviceCommand): Promise<CommandReply> {
    switch (command.op) {
      case CommandOp.ScpiQuery: {
        const text = commandText(command.data, this.settings.terminator);
        if (!text.includes(0x3f)) {
          throw new ValidationError('data', `"${describeCommand(text)}" has no "?": it is no query and would never be answered`);
        }
        const answer = await this.live.turn((turn) => turn.query(text));
        // A copy: the answer may be a view of a large read buffer.
        return { value: answerNumber(answer), data: Buffer.from(answer) };
      }
      case CommandOp.ScpiWrite: {
        const text = commandText(command.data, this.settings.terminator);
        const checkErrors = this.settings.checkErrors;
        await this.live.turn(async (turn) => {
          await turn.write(text);
          if (checkErrors) await this.checkErrors(turn, text);
        });
        return { value: 0, data: Buffer.alloc(0) };
      }
      default:
        throw new UnsupportedError(`a SCPI instrument has no ${CommandOp[command.op] ?? `op ${command.op}`} command`);
    }
  }

  /** Reads the instrument's error queue to the end (0,"No error") and fails with what it held. */
  private async checkErrors(turn: ScpiTurn, command: Buffer): Promise<void> {
    const errors: string[] = [];
    for (let i = 0; i < MAX_ERROR_READS; i++) {
      const error = parseScpiError(await turn.query(SYST_ERR));
      if (error.code === 0) break;
      errors.push(`${error.code},"${error.message}"`);
    }
    if (errors.length > 0) throw new DeviceError(`the instrument reported ${errors.join('; ')} after ${describeCommand(command)}`);
  }

  configuration(): Promise<Record<string, string>> {
    const config: Record<string, string> = {
      transport: this.settings.transport,
      terminator: escapeTerminator(this.settings.terminator),
      timeoutMs: String(this.settings.timeoutMs),
      checkErrors: String(this.settings.checkErrors),
      idn: this.idn,
    };
    if (this.identity) Object.assign(config, this.identity);
    if (this.serial) {
      const { baudRate, dataBits, parity, stopBits } = this.serial;
      Object.assign(config, { baudRate: String(baudRate), dataBits: String(dataBits), parity, stopBits: String(stopBits) });
    }
    return Promise.resolve(config);
  }

  private gone(error: DeviceError): void {
    const data = Buffer.from(error.message);
    this.listener?.({ type: DeviceEventType.DeviceError, timestampMs: eventTimestamp(), source: 'instrument', value: 0, data });
    this.stream.destroy();
  }

  async close(): Promise<void> {
    await this.line?.close();
    this.stream.destroy();
  }
}

function sameLine(a: SerialPortOptions | null, b: SerialPortOptions | null): boolean {
  if (a === null || b === null) return a === b;
  return (Object.keys(a) as Array<keyof SerialPortOptions>).every((k) => a[k] === b[k]);
}
