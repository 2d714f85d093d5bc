import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { BindingInterface } from '@serialport/bindings-interface';
import { SerialPortStream } from '@serialport/stream';
import { DeviceError, errorMessage } from '../../src/errors';
import { openSerialStream } from './open-serial-stream';
import type { SerialPortOptions } from './serial-options';

export type ScpiTransportKind = 'usbtmc' | 'serial';

/** Where a transport hands what it reads. */
export interface TransportSink {
  data(chunk: Buffer): void;
  /** The device went away or failed; the transport is dead. */
  gone(error: DeviceError): void;
}

/** How an instrument's bytes move: commands out, answers in. */
export interface ScpiTransport {
  readonly kind: ScpiTransportKind;
  /** Sends one whole program message (the command and its terminator). */
  send(message: Buffer): Promise<void>;
  /** Whether an answer is owed: usbtmc reads only then; a serial line reads all the time. */
  expectAnswer(owed: boolean): void;
  close(): Promise<void>;
}

/** One read(2) of /dev/usbtmcN returns at most this much; a longer answer comes in further reads. */
const USBTMC_READ_SIZE = 64 * 1024;

/**
 * A USBTMC character device through the kernel's usbtmc driver. Its semantics, which this follows:
 * - each write(2) goes out as one USBTMC message with EOM on its last transfer, so a command is
 *   written whole in one call;
 * - each read(2) sends REQUEST_DEV_DEP_MSG_IN and returns one answer (up to EOM, or as much as
 *   fits); a read with no query pending waits out the kernel's USB timeout (5 s unless changed by
 *   ioctl) and fails with ETIMEDOUT, and the instrument may log a query error, so this reads only
 *   while an answer is owed;
 * - reads and writes share the driver's I/O mutex: a write waits for a read in flight;
 * - device clear (USBTMC_IOCTL_CLEAR) is an ioctl, which Node's fs cannot issue: a timed-out
 *   query's answer is discarded by the line instead (see ScpiLine).
 * The reads block a libuv pool thread each; the kernel's timeout bounds them. Tests drive this
 * against a pty slave, which returns whatever bytes are there, not one answer per read: the line
 * cuts answers at the terminator, which holds for both.
 */
class UsbtmcTransport implements ScpiTransport {
  readonly kind = 'usbtmc';
  private owed = false;
  private reading = false;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly file: FileHandle,
    private readonly sink: TransportSink,
  ) {}

  async send(message: Buffer): Promise<void> {
    let offset = 0;
    while (offset < message.length) {
      const { bytesWritten } = await this.file.write(message, offset, message.length - offset).catch((err: unknown) => {
        throw this.fail('write', err);
      });
      offset += bytesWritten;
    }
  }

  expectAnswer(owed: boolean): void {
    this.owed = owed;
    if (owed && !this.reading && !this.closed) this.readOnce();
  }

  private readOnce(): void {
    this.reading = true;
    const buffer = Buffer.allocUnsafe(USBTMC_READ_SIZE);
    this.file.read(buffer, 0, buffer.length, null).then(
      ({ bytesRead }) => {
        this.reading = false;
        if (this.closed) return;
        if (bytesRead === 0) {
          this.sink.gone(new DeviceError(`${this.path}: the device hung up`));
          return;
        }
        this.sink.data(buffer.subarray(0, bytesRead));
        this.expectAnswer(this.owed);
      },
      (err: NodeJS.ErrnoException) => {
        this.reading = false;
        if (this.closed) return;
        // The kernel's own timeout: nothing came yet; read again while an answer is still owed.
        if (err.code === 'ETIMEDOUT') this.expectAnswer(this.owed);
        else this.sink.gone(this.fail('read', err));
      },
    );
  }

  private fail(op: string, err: unknown): DeviceError {
    return new DeviceError(`${this.path}: ${op} failed: ${errorMessage(err)}`, { cause: err });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    const closing = this.file.close().catch(() => undefined);
    // FileHandle.close() waits for a read in flight, which ends only when the instrument answers
    // or the kernel's timeout expires: the handle is released then, without holding up close().
    return this.reading ? Promise.resolve() : closing;
  }
}

/** Opens /dev/usbtmcN (or any character device that speaks the same way). */
export async function openUsbtmc(path: string, sink: TransportSink): Promise<ScpiTransport> {
  try {
    // O_NOCTTY: harmless on usbtmc; keeps a pty standing in for it from becoming our terminal.
    const file = await fs.promises.open(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    return new UsbtmcTransport(path, file, sink);
  } catch (err) {
    throw new DeviceError(`cannot open ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** An instrument's RS-232 port through serialport: the line is read all the time, as a UART receives. */
class SerialTransport implements ScpiTransport {
  readonly kind = 'serial';
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly stream: SerialPortStream,
    sink: TransportSink,
  ) {
    stream.on('data', (chunk: Buffer) => sink.data(chunk));
    const gone = (err?: Error): void => {
      if (this.closed) return;
      this.closed = true;
      sink.gone(new DeviceError(`${path}: ${err ? errorMessage(err) : 'the port closed'}`, { cause: err }));
    };
    stream.on('error', gone);
    stream.on('close', gone);
  }

  send(message: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.write(message, (err) => {
        if (err) reject(new DeviceError(`${this.path}: write failed: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  expectAnswer(): void {
    // Always reading: bytes that nobody asked for are dropped by the line.
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (!this.stream.isOpen) {
      this.stream.destroy();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.stream.close(() => {
        this.stream.destroy();
        resolve();
      });
    });
  }
}

/** Opens a serial line with the platform's binding (or the one given), locked against other processes. */
export async function openSerial(path: string, options: SerialPortOptions, binding: BindingInterface, sink: TransportSink): Promise<ScpiTransport> {
  return new SerialTransport(path, await openSerialStream(binding, path, options), sink);
}
