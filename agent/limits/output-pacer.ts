import { type QueueTimers, REAL_TIMERS } from '../exchange/command-queue';
import type { TokenBucket } from '../../src/limits/token-bucket';
import { MAX_PIECE } from './limit-gate';

export interface OutputPacerOptions {
  /** The binding's byte bucket, which its writes to the device are charged to as well. */
  readonly bucket: TokenBucket;
  /** Above the limit: true = drop mode, whose output is not paced (only what apps send is cut). */
  readonly drop: () => boolean;
  /** Hands released bytes on, in order. */
  readonly release: (chunk: Buffer) => void;
  /** Bytes had to wait for tokens. */
  readonly throttled: () => void;
  /** The held bytes fell below the high-water mark after offer() said it was reached. */
  readonly drained: () => void;
  /** Bytes held before offer() asks the device to pause. */
  readonly highWaterMark: number;
  /** Default: Node's timers. */
  readonly timers?: QueueTimers;
}

/**
 * Device → app in slow mode: each chunk of device output goes on to the app once the binding's
 * byte bucket has tokens for it; the rest waits here, in order, released a piece at a time by one
 * timer (never one per byte or per chunk). While more than the high-water mark waits, offer()
 * returns false and the host pauses the device, so a limited binding slows its device down as a
 * full session would, and nothing is lost. Without a limit, or in drop mode, a chunk goes straight
 * through once nothing is waiting ahead of it.
 */
export class OutputPacer {
  private readonly held: Buffer[] = [];
  private head = 0;
  private heldBytes = 0;
  private timer: unknown;
  private full = false;
  private readonly timers: QueueTimers;

  constructor(private readonly options: OutputPacerOptions) {
    this.timers = options.timers ?? REAL_TIMERS;
  }

  /** Bytes waiting for tokens. */
  get waiting(): number {
    return this.heldBytes;
  }

  /** The held bytes reached the high-water mark; `drained` is called once they fall below it. */
  get saturated(): boolean {
    return this.full;
  }

  /** @returns false when the held bytes reached the high-water mark: the device should pause. */
  offer(chunk: Buffer): boolean {
    if (this.heldBytes === 0) {
      const bucket = this.options.bucket;
      if (bucket.ratePerSecond === 0 || this.options.drop()) {
        this.options.release(chunk);
        return true;
      }
      const n = bucket.take(chunk.length);
      if (n === chunk.length) {
        this.options.release(chunk);
        return true;
      }
      if (n > 0) this.options.release(chunk.subarray(0, n));
      chunk = chunk.subarray(n);
      this.options.throttled();
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    this.arm();
    this.full = this.heldBytes >= this.options.highWaterMark;
    return !this.full;
  }

  /** The session ended: what waits is dropped with it. */
  close(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.held.length = 0;
    this.head = 0;
    this.heldBytes = 0;
  }


  private arm(): void {
    if (this.timer !== undefined || this.heldBytes === 0) return;
    const bucket = this.options.bucket;
    const first = this.held[this.head] as Buffer;
    const piece = Math.min(first.length, MAX_PIECE, bucket.burst || MAX_PIECE);
    this.timer = this.timers.setTimeout(this.onTimer, bucket.delayFor(piece));
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    const bucket = this.options.bucket;
    const unpaced = bucket.ratePerSecond === 0 || this.options.drop();
    while (this.heldBytes > 0) {
      const first = this.held[this.head] as Buffer;
      const n = unpaced ? first.length : bucket.take(first.length);
      if (n === 0) break;
      this.heldBytes -= n;
      if (n === first.length) {
        this.held[this.head++] = EMPTY;
        this.options.release(first);
      } else {
        this.held[this.head] = first.subarray(n);
        this.options.release(first.subarray(0, n));
      }
    }
    if (this.head === this.held.length) {
      this.held.length = 0;
      this.head = 0;
    }
    this.arm();
    if (this.full && this.heldBytes < this.options.highWaterMark) {
      this.full = false;
      this.options.drained();
    }
  };
}

const EMPTY = Buffer.alloc(0);
