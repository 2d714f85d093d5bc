import { parseArgs } from 'node:util';
import { integerFlag as integer, resultsFile } from '../common/bench-options';

export interface FloodOptions {
  /** Timed round trips idle, and again during the flood, per run. */
  roundTrips: number;
  /** Flood rates to run, new connections a second. */
  rates: number[];
  /** Runs of each refusal mode, taken in turn. */
  rounds: number;
  quick: boolean;
  out: string;
}

export const USAGE = [
  'usage: npm run bench:flood -- [flags]   (or node dist/bench/flood/main.js [flags])',
  '',
  '  --round-trips N   timed round trips idle and during each flood (default 20000)',
  '  --rates LIST      flood rates, new connections a second (default 5000,10000,20000)',
  '  --rounds N        runs of each refusal mode, taken in turn (default 3)',
  '  --quick           smoke run: 2000 round trips, 5000/s, 1 round',
  '  --out FILE        JSON results (default bench/results/flood-<timestamp>.json)',
].join('\n');

/** Undefined means --help. */
export function parseOptions(argv: string[], now = new Date()): FloodOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      'round-trips': { type: 'string' },
      rates: { type: 'string' },
      rounds: { type: 'string' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const quick = values.quick ?? false;
  return {
    roundTrips: integer('round-trips', values['round-trips'] ?? (quick ? '2000' : '20000'), 10, 1_000_000),
    rates: (values.rates ?? (quick ? '5000' : '5000,10000,20000')).split(',').map((r) => integer('rates', r.trim(), 1, 1_000_000)),
    rounds: integer('rounds', values.rounds ?? (quick ? '1' : '3'), 1, 100),
    quick,
    out: resultsFile('flood', values.out, now),
  };
}
