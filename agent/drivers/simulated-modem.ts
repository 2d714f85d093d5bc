import type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from '@serialport/bindings-interface';
import { DeviceError } from '../../src/errors';
import type { LineSettings } from './termios-readback';

/** Simulated devices live under this path prefix, e.g. `sim:modem0`. */
export const SIMULATED_PREFIX = 'sim:';
export const SIMULATED_MODEM_IDENTITY = 'devicemesh simulated modem';
export const SIMULATED_MODEM_VERSION = 'devicemesh-sim 1.0.0';

const CR = 0x0d;
const LF = 0x0a;
const MAX_LINE = 256;
/** Output nobody reads is dropped beyond this, as a UART overruns. */
const MAX_PENDING_OUTPUT = 1 << 20;

/** The binding contract's error for operations cut short by close(). */
function canceled(message: string): DeviceError & { canceled: true } {
  return Object.assign(new DeviceError(message), { canceled: true as const });
}

/**
 * A serialport binding whose ports are simulated AT-command modems, for the demo and tests with
 * no hardware: the same SerialPortStream and driver code run over it as over a real port.
 */
export class SimulatedModemBinding implements BindingInterface<SimulatedModemPort> {
  private readonly opened = new Map<string, SimulatedModemPort>();
  /** flush() calls per path, over every open of it (a reconfiguration reopens the port). */
  readonly flushes = new Map<string, number>();

  /** @param names e.g. ['modem0'] → a port at `sim:modem0`. */
  constructor(private readonly names: readonly string[]) {}

  get paths(): string[] {
    return this.names.map((n) => SIMULATED_PREFIX + n);
  }

  list(): Promise<PortInfo[]> {
    return Promise.resolve(
      this.paths.map((path) => ({
        path,
        manufacturer: 'devicemesh',
        serialNumber: undefined,
        pnpId: undefined,
        locationId: undefined,
        productId: undefined,
        vendorId: undefined,
      })),
    );
  }

  open(options: OpenOptions): Promise<SimulatedModemPort> {
    const path = options.path;
    if (!this.paths.includes(path)) return Promise.reject(new DeviceError(`no simulated device at ${path}`));
    // A modem has one line: a second open fails as a locked tty does.
    if (this.opened.has(path)) return Promise.reject(new DeviceError(`${path} is already open (port is locked)`));
    const openOptions: Required<OpenOptions> = {
      dataBits: 8,
      lock: true,
      stopBits: 1,
      parity: 'none',
      rtscts: false,
      xon: false,
      xoff: false,
      xany: false,
      hupcl: true,
      ...options,
    };
    const port = new SimulatedModemPort(
      openOptions,
      () => this.opened.delete(path),
      () => this.flushes.set(path, (this.flushes.get(path) ?? 0) + 1),
    );
    this.opened.set(path, port);
    return Promise.resolve(port);
  }

  /** The open port at `path`, to see what a driver asked of it. */
  port(path: string): SimulatedModemPort | undefined {
    return this.opened.get(path);
  }

  /** The line settings the open port has, as a tty's would be read back. */
  lineSettings(path: string): Promise<LineSettings> {
    const port = this.opened.get(path);
    if (!port) return Promise.reject(new DeviceError(`${path} is not open`));
    const o = port.openOptions;
    const parity = o.parity === 'none' || o.parity === 'even' || o.parity === 'odd' || o.parity === 'mark' || o.parity === 'space' ? o.parity : 'none';
    return Promise.resolve({
      baudRate: String(o.baudRate),
      dataBits: String(o.dataBits),
      parity,
      stopBits: o.stopBits === 2 ? '2' : '1',
      flowControl: o.rtscts ? 'rtscts' : o.xon || o.xoff ? 'xonxoff' : 'none',
    });
  }
}

interface PendingRead {
  buffer: Buffer;
  offset: number;
  length: number;
  resolve(result: { buffer: Buffer; bytesRead: number }): void;
  reject(err: Error): void;
}

/**
 * One open simulated modem: echoes what it is sent (until ATE0) and answers each line ended by
 * CR: AT, ATI, AT+GMR, ATE0/ATE1, ATD<number> (CONNECT, carrier detect on), ATH (carrier off);
 * anything else gets ERROR. DSR follows DTR as a modem's "ready" does, and dropping DTR hangs
 * up; every set() is kept in `lineRequests` (and modem-line reads and, per path, flushes counted) so tests can see what a driver asked.
 */
export class SimulatedModemPort implements BindingPortInterface {
  isOpen = true;
  private echo = true;
  private line = '';
  private lineOverflow = false;
  private output: Buffer[] = [];
  private outputLength = 0;
  private pendingRead: PendingRead | undefined;
  private carrier = false;
  private dtr = true;
  /** Every set() in order, as the driver asked it. */
  readonly lineRequests: SetOptions[] = [];
  /** How many times the driver read the modem lines (get()) on this port. */
  lineReads = 0;

  constructor(
    readonly openOptions: Required<OpenOptions>,
    private readonly onClose: () => void,
    private readonly onFlush: () => void,
  ) {}

  close(): Promise<void> {
    if (!this.isOpen) return Promise.reject(new DeviceError('Port is not open'));
    this.isOpen = false;
    this.output = [];
    this.outputLength = 0;
    const read = this.pendingRead;
    this.pendingRead = undefined;
    read?.reject(canceled('port closed'));
    this.onClose();
    return Promise.resolve();
  }

  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    if (!this.isOpen) return Promise.reject(canceled('Port is not open'));
    if (this.pendingRead) return Promise.reject(new DeviceError('a read is already pending'));
    if (this.outputLength > 0) return Promise.resolve({ buffer, bytesRead: this.take(buffer, offset, length) });
    return new Promise((resolve, reject) => {
      this.pendingRead = { buffer, offset, length, resolve, reject };
    });
  }

  write(buffer: Buffer): Promise<void> {
    if (!this.isOpen) return Promise.reject(new DeviceError('Port is not open'));
    let echoFrom = 0;
    for (let i = 0; i < buffer.length; i++) {
      const byte = buffer[i] as number;
      if (byte === CR) {
        // The echo of a command goes out before its answer, and before ATE0 takes effect.
        if (this.echo) this.emit(buffer.subarray(echoFrom, i + 1));
        echoFrom = i + 1;
        this.answer();
      } else if (byte !== LF) {
        if (this.line.length < MAX_LINE) this.line += String.fromCharCode(byte);
        else this.lineOverflow = true;
      }
    }
    if (this.echo && echoFrom < buffer.length) this.emit(buffer.subarray(echoFrom));
    return Promise.resolve();
  }

  update(options: UpdateOptions): Promise<void> {
    if (!this.isOpen) return Promise.reject(new DeviceError('Port is not open'));
    this.openOptions.baudRate = options.baudRate;
    return Promise.resolve();
  }

  set(options: SetOptions): Promise<void> {
    if (!this.isOpen) return Promise.reject(new DeviceError('Port is not open'));
    this.lineRequests.push({ ...options });
    this.dtr = options.dtr !== false;
    if (!this.dtr) this.carrier = false;
    return Promise.resolve();
  }

  get(): Promise<PortStatus> {
    if (!this.isOpen) return Promise.reject(new DeviceError('Port is not open'));
    this.lineReads++;
    return Promise.resolve({ cts: true, dsr: this.dtr, dcd: this.carrier });
  }

  getBaudRate(): Promise<{ baudRate: number }> {
    return Promise.resolve({ baudRate: this.openOptions.baudRate });
  }

  flush(): Promise<void> {
    this.onFlush();
    this.output = [];
    this.outputLength = 0;
    return Promise.resolve();
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  private answer(): void {
    const command = this.line.trim().toUpperCase();
    const overflow = this.lineOverflow;
    this.line = '';
    this.lineOverflow = false;
    if (command === '' && !overflow) return;
    let reply: string;
    if (overflow) reply = 'ERROR';
    else if (command === 'AT') reply = 'OK';
    else if (command === 'ATI') reply = `${SIMULATED_MODEM_IDENTITY}\r\n\r\nOK`;
    else if (command === 'AT+GMR') reply = `${SIMULATED_MODEM_VERSION}\r\n\r\nOK`;
    else if (command === 'ATE0' || command === 'ATE1') {
      this.echo = command === 'ATE1';
      reply = 'OK';
    } else if (/^ATD[T P]?[0-9*#,W ]+$/.test(command) && this.dtr) {
      this.carrier = true;
      reply = 'CONNECT 115200';
    } else if (command === 'ATH' || command === 'ATH0') {
      this.carrier = false;
      reply = 'OK';
    } else reply = 'ERROR';
    this.emit(Buffer.from(`\r\n${reply}\r\n`, 'latin1'));
  }

  /** Queues bytes for the reader (copied: the writer may reuse its buffer). */
  private emit(bytes: Buffer): void {
    if (bytes.length === 0 || this.outputLength + bytes.length > MAX_PENDING_OUTPUT) return;
    this.output.push(Buffer.from(bytes));
    this.outputLength += bytes.length;
    const read = this.pendingRead;
    if (read) {
      this.pendingRead = undefined;
      read.resolve({ buffer: read.buffer, bytesRead: this.take(read.buffer, read.offset, read.length) });
    }
  }

  private take(buffer: Buffer, offset: number, length: number): number {
    let n = 0;
    while (n < length && this.output.length > 0) {
      const head = this.output[0] as Buffer;
      const k = Math.min(head.length, length - n);
      head.copy(buffer, offset + n, 0, k);
      n += k;
      if (k === head.length) this.output.shift();
      else this.output[0] = head.subarray(k);
    }
    this.outputLength -= n;
    return n;
  }
}
