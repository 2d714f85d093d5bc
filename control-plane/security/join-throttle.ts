import type * as grpc from '@grpc/grpc-js';
import { ResourceExhaustedError } from '../../src/errors';
import { toServiceError } from '../../src/grpc/grpc-errors';
import { hostOf } from '../../src/security/refusal-log';
import type { Stats } from '../../src/telemetry/stats';

const BASE_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;
/** Joins queued beyond this much waiting are refused at once: a flood holds no calls open. */
const MAX_WAIT_MS = 4 * MAX_DELAY_MS;
const FORGET_AFTER_MS = 60_000;
const MAX_SOURCES = 4096;

/**
 * Slows failed joins per source address: after n failures in a row, each further attempt from
 * that address waits 250 ms·2^(n-1) (at most 5 s) after the one before it, so parallel guesses
 * are spaced too; a success forgets the address, so does a minute without attempts.
 */
export class JoinThrottle {
  private readonly sources = new Map<string, { failures: number; nextAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** How long the attempt starting now must wait; undefined when it must be refused. */
  admit(source: string): number | undefined {
    const entry = this.sources.get(source);
    if (!entry) return 0;
    const t = this.now();
    const wait = Math.max(0, entry.nextAt - t);
    if (wait > MAX_WAIT_MS) return undefined;
    entry.nextAt = Math.max(entry.nextAt, t) + step(entry.failures);
    return wait;
  }

  failed(source: string): void {
    const t = this.now();
    const entry = this.sources.get(source) ?? { failures: 0, nextAt: t };
    entry.failures += 1;
    entry.nextAt = Math.max(entry.nextAt, t + step(entry.failures));
    this.sources.set(source, entry);
    if (this.sources.size > MAX_SOURCES) {
      for (const [key, e] of this.sources) if (e.nextAt < t - FORGET_AFTER_MS) this.sources.delete(key);
    }
  }

  succeeded(source: string): void {
    this.sources.delete(source);
  }
}

function step(failures: number): number {
  return Math.min(BASE_DELAY_MS * 2 ** Math.max(0, failures - 1), MAX_DELAY_MS);
}

/** Identity/Join behind the throttle, keyed on the caller's address; waits and refusals counted. */
export function throttledJoin(join: grpc.handleUnaryCall<unknown, unknown>, throttle: JoinThrottle, stats: Stats): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const source = hostOf(call.getPeer());
    const wait = throttle.admit(source);
    if (wait === undefined) {
      stats.add('joins_throttled', 1, { outcome: 'refused' });
      callback(toServiceError(new ResourceExhaustedError(`too many failed joins from ${source}; try again later`)) as grpc.ServiceError);
      return;
    }
    if (wait > 0) stats.add('joins_throttled', 1, { outcome: 'delayed' });
    setTimeout(() => {
      join(call, (err, value) => {
        if (err) throttle.failed(source);
        else throttle.succeeded(source);
        callback(err, value);
      });
    }, wait);
  };
}
