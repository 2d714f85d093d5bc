import type { TokenBucket } from '../../src/limits/token-bucket';
import { type QueueTimers, REAL_TIMERS } from '../exchange/command-queue';
import type { BindingLimits } from './binding-limits';
import type { RateMeter } from './rate-meter';

/** The most bytes written per piece while a limit applies, so that a big chunk is paced smoothly. */
export const MAX_PIECE = 4096;

export type WriteFn = (piece: Buffer, callback: (err?: Error | null) => void) => void;
type Callback = (err?: Error | null) => void;

/**
 * The one rate gate between a session and its device: the binding's byte and command buckets
 * and the device's capacity, charged alike whether the session's bytes go to the device as a
 * stream (write) or as commands of a shared device (admit). Above a limit a slow binding waits
 * for tokens (its write callback, and so its credit, waits with it); a dropping binding loses what
 * the buckets refuse, counted in its limits.
 *
 * One gate per session: a Writable hands it one chunk at a time, so the chunk being paced is kept
 * in fields and no closure is made per chunk.
 */
export class LimitGate {
  private chunk: Buffer = EMPTY;
  private offset = 0;
  private piece = MAX_PIECE;
  private sink: WriteFn | undefined;
  private callback: Callback | undefined;

  constructor(
    readonly binding: BindingLimits,
    private readonly device: TokenBucket,
    private readonly deviceMeter: RateMeter,
    private readonly timers: QueueTimers = REAL_TIMERS,
  ) {}

  /** No bucket on the way limits anything now. */
  get unlimited(): boolean {
    return this.binding.bytes.ratePerSecond === 0 && this.binding.commands.ratePerSecond === 0 && this.device.ratePerSecond === 0;
  }

  /**
   * Stream bytes: without a limit one write; with one, pieces of at most a burst, each once every
   * bucket has its tokens, or, dropping, what the buckets allow now and the rest dropped. Every
   * byte written is recorded in the binding's and the device's meters.
   */
  write(chunk: Buffer, write: WriteFn, callback: Callback): void {
    const bytes = this.binding.bytes;
    const device = this.device;
    if (bytes.ratePerSecond === 0 && device.ratePerSecond === 0) {
      this.metered(chunk.length);
      write(chunk, callback);
      return;
    }
    if (this.binding.drop) {
      // What every bucket can give now, taken from each alike: no bucket pays for bytes another refused.
      const allowed = Math.min(chunk.length, bytes.available(), device.available());
      bytes.take(allowed);
      device.take(allowed);
      if (allowed < chunk.length) {
        this.binding.droppedBytes.add(chunk.length - allowed);
        this.binding.markThrottled();
      }
      if (allowed === 0) {
        callback();
        return;
      }
      this.metered(allowed);
      write(allowed === chunk.length ? chunk : chunk.subarray(0, allowed), callback);
      return;
    }
    this.chunk = chunk;
    this.offset = 0;
    this.piece = this.pieceSize(MAX_PIECE);
    this.sink = write;
    this.callback = callback;
    this.next();
  }

  /**
   * One command of `bytes` bytes: charged to the command bucket once and to the byte buckets for
   * every byte. Slow mode resolves true once all is paid (in pieces of at most a burst, so a command
   * larger than a burst passes too); drop mode takes it only if all of it can go now (capped at each
   * bucket's burst), else drops and counts it and resolves false.
   */
  async admit(bytes: number): Promise<boolean> {
    if (this.unlimited) return true;
    const limits = this.binding;
    const device = this.device;
    if (limits.drop) {
      const need = Math.min(bytes, limits.bytes.burst || bytes);
      const deviceNeed = Math.min(bytes, device.burst || bytes);
      if (limits.commands.available() >= 1 && limits.bytes.available() >= need && device.available() >= deviceNeed) {
        limits.commands.take(1);
        limits.bytes.take(need);
        device.take(deviceNeed);
        return true;
      }
      limits.droppedCommands.add(1);
      limits.droppedBytes.add(bytes);
      limits.markThrottled();
      return false;
    }
    const piece = this.pieceSize(bytes);
    let command = 1;
    for (let left = bytes; left > 0 || command > 0; ) {
      const n = Math.min(piece, left);
      const delay = this.delayFor(command, n);
      if (delay > 0) {
        limits.markThrottled();
        await new Promise<void>((resolve) => this.timers.setTimeout(resolve, delay));
        continue;
      }
      limits.commands.take(command);
      limits.bytes.take(n);
      device.take(n);
      command = 0;
      left -= n;
    }
    return true;
  }

  /** Slow stream: the next piece of the chunk in hand, now or once its tokens are there. */
  private readonly next = (): void => {
    const n = Math.min(this.piece, this.chunk.length - this.offset);
    const delay = this.delayFor(0, n);
    if (delay > 0) {
      this.binding.markThrottled();
      this.timers.setTimeout(this.next, delay);
      return;
    }
    this.binding.bytes.take(n);
    this.device.take(n);
    this.metered(n);
    const start = this.offset;
    this.offset += n;
    (this.sink as WriteFn)(this.chunk.subarray(start, start + n), this.pieceWritten);
  };

  private readonly pieceWritten = (err?: Error | null): void => {
    if (!err && this.offset < this.chunk.length) {
      this.next();
      return;
    }
    const callback = this.callback as Callback;
    this.chunk = EMPTY;
    this.sink = undefined;
    this.callback = undefined;
    callback(err);
  };

  /** At most `cap`, and at most the burst of each limited byte bucket. */
  private pieceSize(cap: number): number {
    let piece = cap;
    const bytes = this.binding.bytes;
    if (bytes.ratePerSecond > 0) piece = Math.min(piece, bytes.burst);
    if (this.device.ratePerSecond > 0) piece = Math.min(piece, this.device.burst);
    return piece;
  }

  private delayFor(commands: number, bytes: number): number {
    return Math.max(this.binding.commands.delayFor(commands), this.binding.bytes.delayFor(bytes), this.device.delayFor(bytes));
  }

  private metered(bytes: number): void {
    this.binding.meter.record(bytes);
    this.deviceMeter.record(bytes);
  }
}

const EMPTY = Buffer.alloc(0);
