/** Microseconds. */
export interface Percentiles {
  samples: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Nearest-rank percentiles of `samples` (µs); sorts a copy. */
export function percentiles(samples: readonly number[], digits = 1): Percentiles {
  if (samples.length === 0) return { samples: 0, p50: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    samples: sorted.length,
    p50: round(at(0.5), digits),
    p99: round(at(0.99), digits),
    max: round(at(1), digits),
    mean: round(sum / sorted.length, digits),
  };
}

/** Jain's fairness index (Σx)² / (n·Σx²): 1 when every share is equal, 1/n when one consumer has everything. */
export function jainIndex(shares: readonly number[]): number {
  let sum = 0;
  let squares = 0;
  for (const x of shares) {
    sum += x;
    squares += x * x;
  }
  return squares === 0 ? NaN : (sum * sum) / (shares.length * squares);
}
