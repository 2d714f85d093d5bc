import * as path from 'node:path';
import { ValidationError } from '../../src/errors';
import { REPO_ROOT } from './bench-run';

/** A flag's value as an integer from `min` to `max`, or a ValidationError naming the flag. */
export function integerFlag(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new ValidationError(`--${name}`, `"${value}" is not an integer from ${min} to ${max}`);
  return n;
}

/** `out` resolved, or bench/results/<benchmark>-<timestamp>.json (a timestamp safe in file names). */
export function resultsFile(benchmark: string, out: string | undefined, now: Date): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  return path.resolve(out ?? path.join(REPO_ROOT, 'bench', 'results', `${benchmark}-${stamp}.json`));
}
