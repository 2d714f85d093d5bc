import { performance } from 'node:perf_hooks';
import { ValidationError } from '../errors';

/**
 * A token bucket: tokens accrue at `ratePerSecond` up to `burst`, and each unit sent (a byte, a
 * command) takes one. Tokens are refilled lazily from the clock on each call, so the bucket costs
 * no timer and no allocation per call: fit for the data path. A rate of 0 means unlimited.
 *
 * The one bucket of the mesh: the agent's byte, command and device limits and the socket
 * plane's connection rate per peer all count with it, so the burst default lives only here.
 */
export class TokenBucket {
  private rate = 0;
  private size = 0;
  private tokens = 0;
  private refilledAt: number;

  /**
   * @param burst the bucket's size; 0 = one second's worth of the rate (the policy's default).
   * @param now the clock in milliseconds (performance.now by default).
   */
  constructor(
    ratePerSecond: number,
    burst: number,
    private readonly now: () => number = (): number => performance.now(),
  ) {
    this.refilledAt = now();
    this.configure(ratePerSecond, burst);
  }

  get ratePerSecond(): number {
    return this.rate;
  }

  get burst(): number {
    return this.size;
  }

  /** Takes up to n tokens now and returns how many it got (0..n); rate 0 = unlimited: always n. */
  take(n: number): number {
    if (this.rate === 0 || n <= 0) return Math.max(0, n);
    this.refill();
    const got = Math.min(n, Math.floor(this.tokens));
    this.tokens -= got;
    return got;
  }

  /**
   * Whole tokens that could be taken now; Infinity when unlimited. To pass n units through several
   * buckets, take min(n, each one's available()) from every one: taking in turn would charge the
   * first buckets for units a later one refuses.
   */
  available(): number {
    if (this.rate === 0) return Infinity;
    this.refill();
    return Math.floor(this.tokens);
  }

  /**
   * Milliseconds until n tokens can be taken; 0 if now. More than the burst can never be there at
   * once, so n is capped at the burst: the caller takes what there is and asks again.
   */
  delayFor(n: number): number {
    if (this.rate === 0 || n <= 0) return 0;
    this.refill();
    const missing = Math.min(n, this.size) - this.tokens;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.rate);
  }

  /** Gives back up to n tokens taken (a charge proved unwarranted), never beyond the burst. */
  give(n: number): void {
    if (this.rate === 0 || n <= 0) return;
    this.refill();
    this.tokens = Math.min(this.size, this.tokens + n);
  }

  /** New rate and burst (adaptive limits), keeping the tokens earned so far, capped at the new burst. */
  configure(ratePerSecond: number, burst: number): void {
    if (!Number.isFinite(ratePerSecond) || ratePerSecond < 0) {
      throw new ValidationError('ratePerSecond', `${ratePerSecond} is not a finite non-negative number`);
    }
    if (!Number.isFinite(burst) || burst < 0) throw new ValidationError('burst', `${burst} is not a finite non-negative number`);
    const wasUnlimited = this.rate === 0;
    if (!wasUnlimited) this.refill();
    this.rate = ratePerSecond;
    // At least one token, or a rate below 1/s could never send anything.
    this.size = ratePerSecond === 0 ? 0 : Math.max(1, burst === 0 ? ratePerSecond : burst);
    // An unlimited bucket kept no count: it starts limited with a full bucket, as a new one does.
    this.tokens = wasUnlimited ? this.size : Math.min(this.tokens, this.size);
    this.refilledAt = this.now();
  }

  private refill(): void {
    const t = this.now();
    // A clock that steps back earns nothing rather than losing what was earned.
    const elapsed = t - this.refilledAt;
    if (elapsed > 0) this.tokens = Math.min(this.size, this.tokens + (elapsed * this.rate) / 1000);
    this.refilledAt = Math.max(t, this.refilledAt);
  }
}
