import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ValidationError } from '../../src/errors';
import { REPO_ROOT } from '../common/bench-run';

export interface SharingOptions {
  /** Measured seconds per consumer count. */
  seconds: number;
  consumers: number[];
  /** Commands timed per side of the queue micro-benchmark. */
  queueCommands: number;
  quick: boolean;
  out: string;
}

export const USAGE = [
  'usage: npm run bench:sharing -- [flags]   (or node dist/bench/sharing/main.js [flags])',
  '',
  '  --seconds N     measured seconds per consumer count (default 5)',
  '  --quick         smoke run: 1 s, 1 and 8 consumers, 5000 queue commands',
  '  --out FILE      JSON results (default bench/results/sharing-<timestamp>.json)',
].join('\n');

/** Undefined means --help. */
export function parseOptions(argv: string[], now = new Date()): SharingOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: { seconds: { type: 'string' }, quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const quick = values.quick ?? false;
  const secondsText = values.seconds ?? (quick ? '1' : '5');
  const seconds = Number(secondsText);
  if (!/^\d+(\.\d+)?$/.test(secondsText) || seconds <= 0 || seconds > 3600) throw new ValidationError('--seconds', `"${secondsText}" is not a number of seconds from 0 to 3600`);
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  return {
    seconds,
    consumers: quick ? [1, 8] : [1, 8, 64],
    queueCommands: quick ? 5000 : 20_000,
    quick,
    out: path.resolve(values.out ?? path.join(REPO_ROOT, 'bench', 'results', `sharing-${stamp}.json`)),
  };
}
