import type { TokenBucket } from './exchange/token-bucket';

/** The most bytes written per piece while a limit applies, so that a big chunk is paced smoothly. */
const MAX_PIECE = 4096;

export type WriteFn = (piece: Buffer, callback: (err?: Error | null) => void) => void;

export interface GateOptions {
  readonly buckets: readonly TokenBucket[];
  /** Above the limit: false waits for tokens (backpressure), true writes what the buckets allow and drops the rest. */
  readonly drop: boolean;
  /** Bytes dropped by policy, counted by the caller. */
  dropped: (bytes: number) => void;
  /** The sender was held back or had bytes dropped. */
  throttled: () => void;
}

/**
 * Writes `chunk` through token buckets: without a limit it is one write; with one, the chunk goes
 * in pieces of at most a burst, each when every bucket has its tokens (the write callback, and so
 * the session's credit, waits meanwhile), or, for a drop policy, what the buckets allow now goes
 * and the rest is dropped and counted.
 */
export function gatedWrite(chunk: Buffer, gate: GateOptions, write: WriteFn, callback: (err?: Error | null) => void): void {
  const buckets = gate.buckets;
  if (unlimited(buckets)) {
    write(chunk, callback);
    return;
  }
  if (gate.drop) {
    // What every bucket can give now, taken from each alike: no bucket pays for bytes another refused.
    let allowed = chunk.length;
    for (const b of buckets) allowed = Math.min(allowed, b.available());
    for (const b of buckets) b.take(allowed);
    if (allowed < chunk.length) {
      gate.dropped(chunk.length - allowed);
      gate.throttled();
    }
    if (allowed === 0) callback();
    else write(allowed === chunk.length ? chunk : chunk.subarray(0, allowed), callback);
    return;
  }
  let piece = MAX_PIECE;
  for (const b of buckets) if (b.ratePerSecond > 0) piece = Math.min(piece, b.burst);
  const next = (offset: number): void => {
    const n = Math.min(piece, chunk.length - offset);
    let delay = 0;
    for (const b of buckets) delay = Math.max(delay, b.delayFor(n));
    if (delay > 0) {
      gate.throttled();
      setTimeout(next, delay, offset);
      return;
    }
    for (const b of buckets) b.take(n);
    write(chunk.subarray(offset, offset + n), (err) => {
      if (err) callback(err);
      else if (offset + n < chunk.length) next(offset + n);
      else callback();
    });
  };
  next(0);
}

/** A plain loop: this runs for every chunk, and a predicate closure would be an allocation each time. */
function unlimited(buckets: readonly TokenBucket[]): boolean {
  for (let i = 0; i < buckets.length; i++) if ((buckets[i] as TokenBucket).ratePerSecond !== 0) return false;
  return true;
}
