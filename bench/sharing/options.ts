import { benchArgs, secondsFlag } from '../common/bench-options';

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
  const args = benchArgs('sharing', argv, ['seconds'], now);
  if (!args) return undefined;
  const { values, quick, out } = args;
  return {
    seconds: secondsFlag('seconds', values.seconds ?? (quick ? '1' : '5'), 3600),
    consumers: quick ? [1, 8] : [1, 8, 64],
    queueCommands: quick ? 5000 : 20_000,
    quick,
    out,
  };
}
