import type { RtuTiming } from '../../src/modbus/silent-interval';
import type { QueueTimers } from './command-queue';

/**
 * Writes RTU frames so that each follows at least the 3.5-character silent interval after the
 * bus was last busy: the last byte heard from the device, or the end of the last frame sent (its
 * length in character times after the write). One frame is in flight at a time (the queue's
 * rule), so at most one write waits, on one timer per frame, never one per byte.
 */
export class SilentIntervalWriter {
  /** When the bus went quiet, ms. */
  private quietSince = Number.NEGATIVE_INFINITY;
  private waiting: Buffer | undefined;
  private timer: unknown;

  constructor(
    private readonly timing: RtuTiming,
    private readonly send: (frame: Buffer) => void,
    private readonly now: () => number,
    private readonly timers: QueueTimers,
  ) {}

  write(frame: Buffer): void {
    const wait = this.quietSince + this.timing.silentMs - this.now();
    if (wait <= 0 && this.waiting === undefined) {
      this.emit(frame);
      return;
    }
    this.waiting = frame;
    if (this.timer === undefined) this.timer = this.timers.setTimeout(this.onQuiet, Math.max(0, wait));
  }

  /** The device sent bytes: the bus is busy until now. */
  heard(): void {
    this.quietSince = this.now();
  }

  /** How long a frame of `bytes` takes on the wire, ms. */
  wireMs(bytes: number): number {
    return bytes * this.timing.charMs;
  }

  private emit(frame: Buffer): void {
    this.quietSince = this.now() + this.wireMs(frame.length);
    this.send(frame);
  }

  private readonly onQuiet = (): void => {
    this.timer = undefined;
    const frame = this.waiting;
    if (frame === undefined) return;
    const wait = this.quietSince + this.timing.silentMs - this.now();
    if (wait > 0) {
      // The device spoke meanwhile: the interval starts over from its last byte.
      this.timer = this.timers.setTimeout(this.onQuiet, wait);
      return;
    }
    this.waiting = undefined;
    this.emit(frame);
  };
}
