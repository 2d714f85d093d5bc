import { benchArgs, integerFlag as integer } from '../common/bench-options';

export interface HotplugOptions {
  /** Plug-and-pull rounds, each timed both ways. */
  rounds: number;
  /** How often the control plane's /api/overview is polled (ms). */
  pollMs: number;
  quick: boolean;
  out: string;
}

export const USAGE = [
  'usage: npm run bench:hotplug -- [flags]   (or node dist/bench/hotplug/main.js [flags])',
  '',
  '  --rounds N    plug-and-pull rounds (default 10)',
  '  --poll-ms N   how often /api/overview is polled, ms (default 10)',
  '  --quick       smoke run: 2 rounds',
  '  --out FILE    JSON results (default bench/results/hotplug-<timestamp>.json)',
].join('\n');

/** Undefined means --help. */
export function parseOptions(argv: string[], now = new Date()): HotplugOptions | undefined {
  const args = benchArgs('hotplug', argv, ['rounds', 'poll-ms'], now);
  if (!args) return undefined;
  const { values, quick, out } = args;
  return {
    rounds: integer('rounds', values.rounds ?? (quick ? '2' : '10'), 1, 1000),
    pollMs: integer('poll-ms', values['poll-ms'] ?? '10', 1, 1000),
    quick,
    out,
  };
}
