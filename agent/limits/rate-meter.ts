import { performance } from 'node:perf_hooks';
import { ValidationError } from '../../src/errors';

const SLOTS = 10;

/**
 * A moving rate over a sliding window of 10 fixed slots (a ring of counts). Sliding slots rather
 * than an EWMA because the controller reads "what this binding did in the last second": a sender
 * that stops reads 0 one window later, where an EWMA decays for ever and never says idle, and a
 * burst counts for exactly one window instead of a shape set by a smoothing constant. The error
 * is one slot's worth at the window's trailing edge. `record` writes into a preallocated array:
 * no allocation, no timer.
 */
export class RateMeter {
  private readonly counts = new Float64Array(SLOTS);
  private readonly slotMs: number;
  private readonly startedAt: number;
  /** Index (since the start) of the slot the latest record fell into. */
  private slot = 0;
  private sum = 0;
  private recorded = 0;

  constructor(
    windowMs = 1000,
    private readonly now: () => number = (): number => performance.now(),
  ) {
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new ValidationError('windowMs', `${windowMs} is not a positive number of milliseconds`);
    this.slotMs = windowMs / SLOTS;
    this.startedAt = now();
  }

  /** Everything recorded since the meter was made. */
  get total(): number {
    return this.recorded;
  }

  record(amount: number): void {
    this.advance(this.now());
    this.counts[this.slot % SLOTS] = (this.counts[this.slot % SLOTS] as number) + amount;
    this.sum += amount;
    this.recorded += amount;
  }

  /**
   * Per second over the last window: the 9 full slots before the current one and the current one
   * so far, divided by the time they cover (less while the meter is younger than a window, so a
   * new meter does not under-read).
   */
  rate(): number {
    const t = this.now();
    this.advance(t);
    const age = Math.max(0, t - this.startedAt);
    const intoSlot = age - this.slot * this.slotMs;
    const covered = Math.min(age, (SLOTS - 1) * this.slotMs + intoSlot);
    // A meter read in its first moments divides by at least one slot, not by almost nothing.
    return (Math.max(0, this.sum) * 1000) / Math.max(covered, this.slotMs);
  }

  /** Moves to the slot of time t, emptying the slots passed over (at most the whole ring). */
  private advance(t: number): void {
    const target = Math.floor(Math.max(0, t - this.startedAt) / this.slotMs);
    if (target <= this.slot) return;
    const steps = Math.min(target - this.slot, SLOTS);
    for (let i = 1; i <= steps; i++) {
      const index = (this.slot + i) % SLOTS;
      this.sum -= this.counts[index] as number;
      this.counts[index] = 0;
    }
    // Sums of many additions and subtractions drift: an empty ring is exactly 0.
    if (steps === SLOTS) this.sum = 0;
    this.slot = target;
  }
}
