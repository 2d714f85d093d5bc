import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ValidationError } from '../../src/errors';
import { REPO_ROOT } from './bench-run';

/** A flag's value as an integer from `min` to `max`, or a ValidationError naming the flag. */
export function integerFlag(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new ValidationError(`--${name}`, `"${value}" is not an integer from ${min} to ${max}`);
  return n;
}

/** A flag's value as a number of seconds above 0 and up to `max`, or a ValidationError naming the flag. */
export function secondsFlag(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || n <= 0 || n > max) throw new ValidationError(`--${name}`, `"${value}" is not a number of seconds from 0 to ${max}`);
  return n;
}

/** `out` resolved, or bench/results/<benchmark>-<timestamp>.json (a timestamp safe in file names). */
export function resultsFile(benchmark: string, out: string | undefined, now: Date): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  return path.resolve(out ?? path.join(REPO_ROOT, 'bench', 'results', `${benchmark}-${stamp}.json`));
}

/** What every benchmark's command line gives: its own flags' values as written, --quick, and where the JSON goes. */
export interface BenchArgs<F extends string> {
  values: Partial<Record<F, string>>;
  quick: boolean;
  out: string;
}

/**
 * Parses a benchmark's command line: `flags` (each taking a value), --quick, --out FILE and
 * --help; an unknown flag or a positional is an error. Undefined means --help.
 */
export function benchArgs<F extends string>(benchmark: string, argv: readonly string[], flags: readonly F[], now = new Date()): BenchArgs<F> | undefined {
  const options: Record<string, { type: 'string' } | { type: 'boolean'; short?: string }> = {
    quick: { type: 'boolean' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const flag of flags) options[flag] = { type: 'string' };
  const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false });
  if (values.help === true) return undefined;
  const given: Partial<Record<F, string>> = {};
  for (const flag of flags) {
    const value = values[flag];
    if (typeof value === 'string') given[flag] = value;
  }
  const out = values.out;
  return { values: given, quick: values.quick === true, out: resultsFile(benchmark, typeof out === 'string' ? out : undefined, now) };
}
