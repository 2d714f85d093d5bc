import { benchArgs, integerFlag as integer } from '../common/bench-options';

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
  const args = benchArgs('flood', argv, ['round-trips', 'rates', 'rounds'], now);
  if (!args) return undefined;
  const { values, quick, out } = args;
  return {
    roundTrips: integer('round-trips', values['round-trips'] ?? (quick ? '2000' : '20000'), 10, 1_000_000),
    rates: (values.rates ?? (quick ? '5000' : '5000,10000,20000')).split(',').map((r) => integer('rates', r.trim(), 1, 1_000_000)),
    rounds: integer('rounds', values.rounds ?? (quick ? '1' : '3'), 1, 100),
    quick,
    out,
  };
}
