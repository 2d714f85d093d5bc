import type { BindingInterface, PortInfo } from '@serialport/bindings-interface';
import { SerialPortStream } from '@serialport/stream';
import { DeviceError, errorMessage, ValidationError } from '../../src/errors';
import type { SerialConfig } from '../../src/proto/types';
import type { DeviceDriver, DeviceHandle } from './device-driver';
import { pollForEveryWaiter } from './poller-workaround';

/** What a line runs at when the configuration leaves it unset: the power-on default of most devices. */
export const DEFAULT_BAUD_RATE = 9600;

/** A SerialConfig in serialport's terms. */
export interface SerialPortOptions {
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits: 1 | 1.5 | 2;
  rtscts: boolean;
  xon: boolean;
  xoff: boolean;
}

const PARITY: Record<SerialConfig['parity'], SerialPortOptions['parity']> = {
  PARITY_UNSPECIFIED: 'none',
  PARITY_NONE: 'none',
  PARITY_EVEN: 'even',
  PARITY_ODD: 'odd',
  PARITY_MARK: 'mark',
  PARITY_SPACE: 'space',
};

const STOP_BITS: Record<SerialConfig['stopBits'], SerialPortOptions['stopBits']> = {
  STOP_BITS_UNSPECIFIED: 1,
  STOP_BITS_ONE: 1,
  STOP_BITS_ONE_POINT_FIVE: 1.5,
  STOP_BITS_TWO: 2,
};

/** Settings serialport can only apply when it opens the port. */
const REOPEN_FIELDS = ['dataBits', 'parity', 'stopBits', 'rtscts', 'xon', 'xoff'] as const;

/** Maps a SerialConfig (null or unset fields: defaults) to serialport's open options. */
export function serialPortOptions(config: SerialConfig | null): SerialPortOptions {
  const dataBits = config?.dataBits || 8;
  if (dataBits !== 5 && dataBits !== 6 && dataBits !== 7 && dataBits !== 8) {
    throw new ValidationError('serial.dataBits', `${dataBits} is not one of 5, 6, 7, 8`);
  }
  const parity = PARITY[config?.parity ?? 'PARITY_UNSPECIFIED'];
  const stopBits = STOP_BITS[config?.stopBits ?? 'STOP_BITS_UNSPECIFIED'];
  if (parity === undefined || stopBits === undefined) {
    throw new ValidationError('serial', `unknown parity ${String(config?.parity)} or stop bits ${String(config?.stopBits)}`);
  }
  const flow = config?.flowControl ?? 'FLOW_CONTROL_UNSPECIFIED';
  return {
    baudRate: config?.baudRate || DEFAULT_BAUD_RATE,
    dataBits,
    parity,
    stopBits,
    rtscts: flow === 'FLOW_CONTROL_RTSCTS',
    xon: flow === 'FLOW_CONTROL_XONXOFF',
    xoff: flow === 'FLOW_CONTROL_XONXOFF',
  };
}

/**
 * The serial driver: serialport's stream over a binding, either the platform's
 * (`autoDetect()` from @serialport/bindings-cpp) or a simulated one.
 */
export class SerialDriver implements DeviceDriver {
  constructor(private readonly binding: BindingInterface) {}

  list(): Promise<PortInfo[]> {
    return this.binding.list();
  }

  open(path: string, config: SerialConfig | null): Promise<DeviceHandle> {
    let options: SerialPortOptions;
    let stream: SerialPortStream;
    try {
      options = serialPortOptions(config);
      // lock (flock, the default) keeps other processes off an open device; it works on ptys too.
      stream = new SerialPortStream({ binding: this.binding, path, ...options, lock: true, autoOpen: false });
    } catch (err) {
      return Promise.reject(new DeviceError(`cannot open ${path}: ${errorMessage(err)}`, { cause: err }));
    }
    return new Promise<DeviceHandle>((resolve, reject) => {
      stream.open((err) => {
        if (err) {
          stream.destroy();
          reject(new DeviceError(`cannot open ${path}: ${err.message}`, { cause: err }));
          return;
        }
        pollForEveryWaiter(stream.port);
        const handle = new SerialHandle(path, stream, options);
        handle.setLines(config).then(
          () => resolve(handle),
          (setErr: unknown) => {
            void handle.close().catch(() => undefined);
            reject(setErr);
          },
        );
      });
    });
  }
}

/**
 * An open serial device. `stream` is one SerialPortStream for the handle's whole life: a setting
 * serialport cannot change on an open port is applied by closing and reopening the binding's port
 * underneath it (see reopen()), so the sessions piped to the stream never notice.
 */
class SerialHandle implements DeviceHandle {
  private dtr: boolean | undefined;
  private rts: boolean | undefined;
  /** The running update() or close(): they run one at a time, in call order. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    readonly stream: SerialPortStream,
    private applied: SerialPortOptions,
  ) {}

  /**
   * Applies a changed configuration: the baud rate alone changes on the open port (serialport's
   * update()); data bits, parity, stop bits or flow control reopen the port with every new
   * setting. Either way the stream, its buffered writes and its readers carry on.
   */
  update(config: SerialConfig | null): Promise<void> {
    const run = this.busy.then(() => this.apply(config));
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async apply(config: SerialConfig | null): Promise<void> {
    const next = serialPortOptions(config);
    if (this.stream.destroyed) throw new DeviceError(`${this.path}: device is closed`);
    if (REOPEN_FIELDS.some((f) => next[f] !== this.applied[f])) {
      await this.reopen(next);
    } else if (next.baudRate !== this.applied.baudRate) {
      await new Promise<void>((resolve, reject) => {
        this.stream.update({ baudRate: next.baudRate }, (err) =>
          err ? reject(new DeviceError(`${this.path}: cannot set baud rate ${next.baudRate}: ${err.message}`, { cause: err })) : resolve(),
        );
      });
      this.applied = { ...this.applied, baudRate: next.baudRate };
    }
    await this.setLines(config);
  }

  /**
   * Closes and reopens the binding's port under the same SerialPortStream. While `closing` is set
   * the stream's isOpen is false, so its next _write and a re-primed _read wait for 'open'
   * (serialport's own queueing for a port not yet open): writes made meanwhile stay in the
   * stream's buffer, with write() returning false past its highWaterMark, and go out in order on
   * the new port. The write already handed to the binding finishes and is drained to the line
   * first; the pending read is canceled by the close and restarted on 'open'. Nothing is added
   * to the data path. The lock is released for the moment between close and open.
   * A failed reopen destroys the stream with a DeviceError: its owner sees 'error' and 'close',
   * as for an unplugged device.
   */
  private async reopen(next: SerialPortOptions): Promise<void> {
    const stream = this.stream;
    const old = stream.port;
    if (!old || !stream.isOpen) throw new DeviceError(`${this.path}: device is not open`);
    stream.closing = true;
    try {
      await old.drain().catch(() => undefined); // a failed drain still leaves the write settled
      await old.close();
      const port = await stream.settings.binding.open({ path: this.path, ...next, lock: true });
      pollForEveryWaiter(port);
      Object.assign(stream.settings, next);
      stream.port = port;
      this.applied = next;
      // The line was reset by the reopen: DTR/RTS are set again by apply().
      this.dtr = this.rts = undefined;
    } catch (err) {
      const error = new DeviceError(`${this.path}: cannot reopen with the new settings: ${errorMessage(err)}`, { cause: err });
      if (old.isOpen) await old.close().catch(() => undefined);
      stream.closing = false;
      stream.port = undefined;
      stream.destroy(error);
      throw error;
    }
    stream.closing = false;
    stream.emit('open');
  }

  /** DTR/RTS are only touched when the configuration sets them: ptys and some adapters refuse the ioctl. */
  setLines(config: SerialConfig | null): Promise<void> {
    const dtr = config?.dtr;
    const rts = config?.rts;
    if ((dtr === undefined && rts === undefined) || (dtr === this.dtr && rts === this.rts)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.stream.set({ dtr: dtr ?? true, rts: rts ?? true }, (err) => {
        if (err) {
          reject(new DeviceError(`${this.path}: cannot set DTR/RTS: ${err.message}`, { cause: err }));
          return;
        }
        this.dtr = dtr;
        this.rts = rts;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const run = this.busy.then(() => this.closeNow());
    this.busy = run.catch(() => undefined);
    return run;
  }

  private closeNow(): Promise<void> {
    const stream = this.stream;
    if (!stream.isOpen) {
      stream.destroy();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      stream.close((err) => {
        stream.destroy();
        if (err) reject(new DeviceError(`${this.path}: close failed: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }
}
