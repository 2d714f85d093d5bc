import { parseArgs } from 'node:util';
import { integerFlag as integer, resultsFile } from '../common/bench-options';

export interface Rfc2217SettingsOptions {
  /** SET-BAUDRATE changes per path. */
  changes: number;
  /** SET-STOPSIZE changes per path (a setting the agent applies by reopening the port). */
  reopenChanges: number;
  /** Untimed changes of each kind first. */
  warmup: number;
  /** Each kind of change is split into this many rounds, the paths taking turns. */
  rounds: number;
  quick: boolean;
  out: string;
}

export const USAGE = [
  'usage: npm run bench:rfc2217-settings -- [flags]   (or node dist/bench/rfc2217-settings/main.js [flags])',
  '',
  '  --changes N         SET-BAUDRATE changes per path (default 100)',
  '  --reopen-changes N  SET-STOPSIZE changes per path, a setting applied by reopening the port (default 20)',
  '  --warmup N          untimed changes of each kind first (default 20)',
  '  --rounds N          split each kind into N rounds, the paths taking turns (default 5)',
  '  --quick             smoke run: 20 and 4 changes after 4, 2 rounds',
  '  --out FILE          JSON results (default bench/results/rfc2217-settings-<timestamp>.json)',
].join('\n');

/** Undefined means --help. */
export function parseOptions(argv: string[], now = new Date()): Rfc2217SettingsOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      changes: { type: 'string' },
      'reopen-changes': { type: 'string' },
      warmup: { type: 'string' },
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
  const changes = integer('changes', values.changes ?? (quick ? '20' : '100'), 1, 100_000);
  const reopenChanges = integer('reopen-changes', values['reopen-changes'] ?? (quick ? '4' : '20'), 1, 100_000);
  const rounds = integer('rounds', values.rounds ?? (quick ? '2' : '5'), 1, Math.min(changes, reopenChanges));
  return {
    changes,
    reopenChanges,
    warmup: integer('warmup', values.warmup ?? (quick ? '4' : '20'), 0, 100_000),
    rounds,
    quick,
    out: resultsFile('rfc2217-settings', values.out, now),
  };
}
