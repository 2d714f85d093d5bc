import { strict as assert } from 'node:assert';
import { performance } from 'node:perf_hooks';
import type * as fc from 'fast-check';
import { DeviceMeshError } from '../../src/errors';

/**
 * Cases per property: a bounded number in the normal suite (CI), many more with `npm run fuzz`
 * (DEVICEMESH_FUZZ_RUNS=50000). A failing seed is printed by fast-check; rerun it with
 * DEVICEMESH_FUZZ_SEED=<seed> DEVICEMESH_FUZZ_PATH=<path>.
 */
export const FUZZ_RUNS = Math.max(1, Number(process.env.DEVICEMESH_FUZZ_RUNS ?? 300) || 300);

/** No single case may take this long: a decoder that loops or backtracks on some input fails here. */
export const CASE_TIME_LIMIT_MS = 1000;

export function fuzzParameters<T>(): fc.Parameters<T> {
  const seed = process.env.DEVICEMESH_FUZZ_SEED;
  const path = process.env.DEVICEMESH_FUZZ_PATH;
  return { numRuns: FUZZ_RUNS, ...(seed ? { seed: Number(seed) } : {}), ...(path ? { path } : {}) };
}

/** A mocha timeout that fits the run count: generous, as the long run is meant to take minutes. */
export function suiteTimeoutMs(perCaseMs = 20): number {
  return Math.max(60_000, FUZZ_RUNS * perCaseMs);
}

/**
 * Runs one decoding of untrusted input: it returns, or throws one of `accepted` (our typed
 * errors) with a message a person can act on; anything else (a TypeError, a RangeError, a
 * string) is a crash. It must finish within CASE_TIME_LIMIT_MS.
 */
export function decodesOrRefuses<T>(
  decode: () => T,
  accepted: ReadonlyArray<abstract new (...args: never[]) => DeviceMeshError> = [DeviceMeshError],
): { value?: T; error?: DeviceMeshError } {
  const started = performance.now();
  try {
    return { value: decode() };
  } catch (err) {
    assert.ok(
      accepted.some((type) => err instanceof type),
      `expected one of ${accepted.map((t) => t.name).join(', ')}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
    );
    const message = (err as DeviceMeshError).message;
    assert.ok(message.length > 0 && message.length <= 2000, `a clear message, got ${JSON.stringify(message.slice(0, 200))}`);
    assert.doesNotMatch(message, /\[object Object\]|undefined is not|Cannot read prop/, 'the message explains the input, not our code');
    return { error: err as DeviceMeshError };
  } finally {
    const took = performance.now() - started;
    assert.ok(took < CASE_TIME_LIMIT_MS, `one case took ${took.toFixed(0)} ms (limit ${CASE_TIME_LIMIT_MS})`);
  }
}
