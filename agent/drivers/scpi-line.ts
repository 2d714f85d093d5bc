import { DeviceError } from '../../src/errors';
import { ScpiAnswerFramer, type ScpiFrame } from './scpi-answer';
import type { ScpiTransport, TransportSink } from './scpi-transport';

export interface ScpiLineOptions {
  terminator: Buffer;
  /** How long a query waits for its answer. */
  timeoutMs: number;
}

/** What one turn on the line may do; its steps run back to back, with nothing in between. */
export interface ScpiTurn {
  query(command: Buffer): Promise<Buffer>;
  write(command: Buffer): Promise<void>;
}

export type TransportOpener = (sink: TransportSink) => Promise<ScpiTransport>;

interface Waiter {
  resolve(answer: Buffer): void;
  reject(error: Error): void;
}

/** A command for messages: printable, short. */
export function describeCommand(command: Buffer): string {
  const text = command.toString('latin1').replace(/[^\x20-\x7e]/g, '.');
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/**
 * The conversation with one instrument. Turns run one at a time in call order (FIFO), so an
 * answer always belongs to the one query waiting. A query that times out still owes its answer:
 * before the next command goes out, the line waits for that answer and drops it, or, if nothing
 * at all arrives for another full timeout, assumes the instrument dropped it. (USBTMC's device
 * clear would be firmer but is an ioctl; RS-232 has none.) An answer later than that is
 * indistinguishable from the next one's.
 */
export class ScpiLine implements TransportSink {
  private transport: ScpiTransport | null = null;
  private framer: ScpiAnswerFramer;
  private queue: Promise<unknown> = Promise.resolve();
  private waiter: Waiter | null = null;
  /** Answers of timed-out queries still to come, to be dropped. */
  private owed = 0;
  private lastDataAt = 0;
  private resynced: (() => void) | null = null;
  private failure: DeviceError | null = null;

  private constructor(
    private options: ScpiLineOptions,
    private readonly onGone: (error: DeviceError) => void,
  ) {
    this.framer = new ScpiAnswerFramer(options.terminator);
  }

  static async open(options: ScpiLineOptions, opener: TransportOpener, onGone: (error: DeviceError) => void): Promise<ScpiLine> {
    const line = new ScpiLine(options, onGone);
    line.transport = await opener(line);
    return line;
  }

  get kind(): ScpiTransport['kind'] | undefined {
    return this.transport?.kind;
  }

  /** Runs `job` once every turn before it has finished. */
  turn<T>(job: (turn: ScpiTurn) => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.failure) throw this.failure;
      return job({ query: (c) => this.ask(c), write: (c) => this.send(c) });
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Takes new options, and a new transport when `opener` is given, after the turns before it. */
  reconfigure(options: ScpiLineOptions, opener?: TransportOpener): Promise<void> {
    return this.turn(async () => {
      // A late answer must not reach the new transport's (or terminator's) first query.
      await this.settle();
      if (opener) {
        await this.transport?.close();
        this.transport = null;
        this.transport = await opener(this).catch((err: unknown) => {
          this.gone(err instanceof DeviceError ? err : new DeviceError(String(err)));
          throw err;
        });
      }
      this.options = options;
      this.framer = new ScpiAnswerFramer(options.terminator);
      this.owed = 0;
    });
  }

  data(chunk: Buffer): void {
    this.lastDataAt = performance.now();
    for (const frame of this.framer.push(chunk)) this.deliver(frame);
    // Now, before a usbtmc transport decides whether to read again (see UsbtmcTransport).
    this.updateReading();
  }

  gone(error: DeviceError): void {
    if (this.failure) return;
    this.failure = error;
    this.waiter?.reject(error);
    this.waiter = null;
    this.resynced?.();
    void this.transport?.close();
    this.onGone(error);
  }

  /** Fails what waits and what is queued, and closes the transport. */
  async close(): Promise<void> {
    if (!this.failure) {
      this.failure = new DeviceError('the instrument is closed');
      this.waiter?.reject(this.failure);
      this.waiter = null;
      this.resynced?.();
    }
    await this.transport?.close();
  }

  private deliver(frame: ScpiFrame): void {
    if (this.owed > 0) {
      if (--this.owed === 0) this.resynced?.();
      return;
    }
    const waiter = this.waiter;
    // An answer nobody waits for (a query sent with ScpiWrite) is dropped.
    if (!waiter) return;
    this.waiter = null;
    if (frame.ok) waiter.resolve(frame.answer);
    else waiter.reject(new DeviceError(`the instrument's answer is malformed: ${frame.error.message}`, { cause: frame.error }));
  }

  /** usbtmc must not read when no answer is owed: that read would hold the device until the USB timeout. */
  private updateReading(): void {
    this.transport?.expectAnswer(this.owed > 0 || this.waiter !== null);
  }

  private live(): ScpiTransport {
    if (this.failure) throw this.failure;
    if (!this.transport) throw new DeviceError('the instrument is not open');
    return this.transport;
  }

  private message(command: Buffer): Buffer {
    return Buffer.concat([command, this.options.terminator]);
  }

  private async send(command: Buffer): Promise<void> {
    await this.settle();
    await this.live().send(this.message(command));
  }

  private async ask(command: Buffer): Promise<Buffer> {
    await this.settle();
    const transport = this.live();
    const timeoutMs = this.options.timeoutMs;
    const answer = new Promise<Buffer>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    const timer = setTimeout(() => {
      const waiter = this.waiter;
      if (!waiter) return;
      this.waiter = null;
      this.owed++;
      waiter.reject(new DeviceError(`instrument did not answer ${describeCommand(command)} within ${timeoutMs} ms`));
    }, timeoutMs);
    // Reading starts once the command is out: a usbtmc read issued first would hold the device's
    // I/O mutex, and so the command, until the USB timeout.
    const sent = transport.send(this.message(command)).then(() => this.updateReading());
    try {
      const [, reply] = await Promise.all([sent, answer]);
      return reply;
    } finally {
      clearTimeout(timer);
      this.waiter = null;
      this.updateReading();
    }
  }

  /** Waits until no timed-out query's answer is still owed (see the class comment). */
  private settle(): Promise<void> {
    if (this.owed === 0 || this.failure) return Promise.resolve();
    this.updateReading();
    const quietMs = this.options.timeoutMs;
    const since = performance.now();
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.resynced = null;
        resolve();
      };
      const check = (): void => {
        const quietFor = performance.now() - Math.max(this.lastDataAt, since);
        if (quietFor < quietMs) {
          timer = setTimeout(check, quietMs - quietFor);
          return;
        }
        this.owed = 0;
        this.framer.reset();
        this.updateReading();
        done();
      };
      this.resynced = done;
      timer = setTimeout(check, quietMs);
    });
  }
}
