import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from './children';
import { DEFAULT_PATHS, PATH_NAMES, type PathName } from './paths';

export interface BenchOptions {
  paths: PathName[];
  /** Timed round trips per path. */
  iterations: number;
  /** Round trips before the timed ones, not counted. */
  warmup: number;
  messageBytes: number;
  /** Bulk transfer per path, MiB. */
  bulkMiB: number;
  /** Size of each write of the bulk transfer, KiB. */
  chunkKiB: number;
  /** The round trips and the bulk transfer are each split into this many rounds, taken in turn across the paths. */
  rounds: number;
  quick: boolean;
  /** Profile mode: the devicemesh paths' sidecar and agent are profiled into this directory (see profile.ts). */
  profile?: string;
  /** What the profile's windows cover: the timed round trips on fresh ports, or the timed bulk transfer. */
  profilePhase: 'round-trips' | 'bulk';
  out: string;
}

const FLAGS: [string, string, string][] = [
  ['--paths LIST', `paths to run (default: ${DEFAULT_PATHS.join(',')})`, 'DEVICEMESH_BENCH_PATHS'],
  ['--iterations N', 'timed round trips per path and phase (default 2000)', 'DEVICEMESH_BENCH_ITERATIONS'],
  ['--warmup N', 'untimed round trips first, for the JIT (default 3000)', 'DEVICEMESH_BENCH_WARMUP'],
  ['--message-bytes N', 'size of a round-trip message (default 64)', 'DEVICEMESH_BENCH_MESSAGE_BYTES'],
  ['--bulk-mib N', 'bulk transfer per path in MiB (default 32)', 'DEVICEMESH_BENCH_BULK_MIB'],
  ['--chunk-kib N', 'size of each bulk write in KiB (default 64)', 'DEVICEMESH_BENCH_CHUNK_KIB'],
  ['--rounds N', 'split each phase into N rounds, paths taking turns (default 5)', 'DEVICEMESH_BENCH_ROUNDS'],
  ['--quick', 'smoke run: 200 round trips after 100, 4 MiB bulk, 2 rounds', 'DEVICEMESH_BENCH_QUICK=1'],
  ['--profile DIR', 'CPU profile, --trace-gc and event-loop probe of sidecar and agent into DIR', 'DEVICEMESH_BENCH_PROFILE'],
  ['--profile-phase P', 'what --profile covers: round-trips (on fresh ports) or bulk (default round-trips)', 'DEVICEMESH_BENCH_PROFILE_PHASE'],
  ['--out FILE', 'JSON results (default bench/results/data-path-<timestamp>.json)', 'DEVICEMESH_BENCH_OUT'],
];

export const USAGE = [
  'usage: npm run bench:data-path -- [flags]   (or node dist/bench/data-path/main.js [flags])',
  '',
  ...FLAGS.map(([flag, what, env]) => `  ${flag.padEnd(20)}${what.padEnd(72)}[${env}]`),
].join('\n');

const FULL = { iterations: '2000', warmup: '3000', 'bulk-mib': '32', rounds: '5' };
const QUICK = { iterations: '200', warmup: '100', 'bulk-mib': '4', rounds: '2' };
type Flag = 'paths' | 'iterations' | 'warmup' | 'message-bytes' | 'bulk-mib' | 'chunk-kib' | 'rounds' | 'profile' | 'profile-phase' | 'out';

function integer(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new Error(`--${name}: "${value}" is not an integer from ${min} to ${max}`);
  return n;
}

/** A file name that sorts by time: data-path-2026-11-24T19-10-00Z.json. */
function timestampedName(now: Date): string {
  return `data-path-${now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}.json`;
}

/** Flags win over DEVICEMESH_BENCH_* variables, which win over the (quick or full) defaults. Undefined means --help. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env, now = new Date()): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      paths: { type: 'string' },
      iterations: { type: 'string' },
      warmup: { type: 'string' },
      'message-bytes': { type: 'string' },
      'bulk-mib': { type: 'string' },
      'chunk-kib': { type: 'string' },
      rounds: { type: 'string' },
      quick: { type: 'boolean' },
      profile: { type: 'string' },
      'profile-phase': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const fromEnv = (name: string): string | undefined => env[`DEVICEMESH_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] || undefined;
  const yes = (name: string): boolean => ['1', 'true', 'yes'].includes(fromEnv(name) ?? '');
  const quick = values.quick ?? yes('quick');
  const defaults: Record<string, string> = quick ? QUICK : FULL;
  const pick = (name: Flag, fallback: string): string => values[name] ?? fromEnv(name) ?? defaults[name] ?? fallback;

  const paths = [...new Set(pick('paths', DEFAULT_PATHS.join(',')).split(',').map((p) => p.trim()))];
  for (const p of paths) {
    if (!(PATH_NAMES as readonly string[]).includes(p)) throw new Error(`--paths: "${p}" is not one of ${PATH_NAMES.join(', ')}`);
  }
  const iterations = integer('iterations', pick('iterations', ''), 1, 10_000_000);
  const rounds = integer('rounds', pick('rounds', ''), 1, 1000);
  const profilePhase = pick('profile-phase', 'round-trips');
  if (profilePhase !== 'round-trips' && profilePhase !== 'bulk') throw new Error(`--profile-phase: "${profilePhase}" is not round-trips or bulk`);
  if (rounds > iterations) throw new Error(`--rounds ${rounds} is more than --iterations ${iterations}: every round needs a round trip`);
  return {
    // In the order of PATH_NAMES, whatever order they were asked in: direct first, the reference.
    paths: PATH_NAMES.filter((p) => paths.includes(p)),
    iterations,
    warmup: integer('warmup', pick('warmup', ''), 0, 10_000_000),
    messageBytes: integer('message-bytes', pick('message-bytes', '64'), 4, 65_536),
    bulkMiB: integer('bulk-mib', pick('bulk-mib', ''), 1, 4096),
    chunkKiB: integer('chunk-kib', pick('chunk-kib', '64'), 1, 16_384),
    rounds,
    quick,
    ...(pick('profile', '') ? { profile: path.resolve(pick('profile', '')) } : {}),
    profilePhase,
    out: path.resolve(pick('out', path.join(REPO_ROOT, 'bench', 'results', timestampedName(now)))),
  };
}
