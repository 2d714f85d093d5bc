/**
 * bench/data-path: a 64-byte command–response round trip and a bulk transfer to an echo on a
 * pty, over each path in one run: the app on the pty itself (the physical limit), through
 * ser2net (the peer), and through devicemesh (sidecar → socket plane → agent). Prints a table and
 * writes bench/results/data-path-<timestamp>.json. See docs/benchmarks.md.
 */
import * as path from 'node:path';
import { errorMessage } from '../../src/errors';
import { machineInfo, runMain, writeResults } from '../common/bench-run';
import { cleanUpOnExit, makeTempDir, removeTempDir } from './children';
import { type BenchOptions, parseOptions, USAGE } from './options';
import { PathRun } from './path-run';
import { PATH_DESCRIPTIONS, type PathName } from './paths';
import { formatProfile, type ProcessProfile } from './profile';
import { socatVersion } from './pty-echo';
import { type DataPathReport, formatReport, isFailed, type PathOutcome, type RoundTripPhase, targetsOf, versusDirect, versusSer2net } from './report';
import { ser2netVersion } from './ser2net';

export const SER2NET_MISSING = 'ser2net not installed: skipping that path (apt-get install ser2net)';
const MiB = 1024 * 1024;

function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** `total` cut into `parts` whole shares that add up to it. */
export function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor((total * (i + 1)) / parts) - Math.floor((total * i) / parts));
}

/**
 * Every path is set up first; then come the round trips on fresh ports, the bulk transfer and the
 * round trips again, each in rounds that visit every path (starting one further along each time).
 */
async function measure(runs: PathRun[], root: string, options: BenchOptions): Promise<void> {
  for (const run of runs) await run.start(root);
  const inTurn = async (turn: number, what: (run: PathRun) => Promise<void>): Promise<void> => {
    for (let k = 0; k < runs.length; k++) await what(runs[(turn + k) % runs.length] as PathRun);
  };
  const roundTrips = async (phase: RoundTripPhase): Promise<void> => {
    for (const [i, count] of shares(options.iterations, options.rounds).entries()) {
      progress(`round trips${phase === 'afterBulk' ? ' after the bulk transfer' : ''}, round ${i + 1}/${options.rounds}: ${count} per path`);
      await inTurn(i, (run) => run.roundTrips(phase, count));
    }
  };
  await roundTrips('fresh');
  for (const run of runs) await run.warmUpBulk();
  for (const [i, bytes] of shares(options.bulkMiB * MiB, options.rounds).entries()) {
    progress(`bulk, round ${i + 1}/${options.rounds}: ${(bytes / MiB).toFixed(1)} MiB per path`);
    await inTurn(i, (run) => run.bulk(bytes));
  }
  await roundTrips('afterBulk');
}

export async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`bench:data-path: ${errorMessage(err)}\n`);
    return 2;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const socat = socatVersion();
  if (!socat) {
    process.stderr.write('bench:data-path: socat is not installed (apt-get install socat): every path runs over a socat pty pair\n');
    return 1;
  }
  const ser2net = ser2netVersion();
  if (!ser2net && options.paths.some((p) => p.startsWith('ser2net'))) process.stdout.write(`${SER2NET_MISSING}\n`);
  // The direct app's port is in this process.
  cleanUpOnExit();
  const startedAt = new Date();
  const root = makeTempDir('devicemesh-bench-data-path-');
  try {
    const runnable = options.paths.filter((name) => ser2net || !name.startsWith('ser2net'));
    const runs = runnable.map((name) => new PathRun(name, options, progress));
    try {
      await measure(runs, root, options);
    } finally {
      for (const run of runs) await run.close();
    }
    const profiles: Array<{ path: PathName } & ProcessProfile> = runs.flatMap((run) => run.profiles().map((p) => ({ path: run.name, ...p })));
    const paths: PathOutcome[] = options.paths.map(
      (name) => runs.find((r) => r.name === name)?.outcome() ?? { path: name, description: PATH_DESCRIPTIONS[name], skipped: SER2NET_MISSING },
    );
    const { out, ...shown } = options;
    const report: DataPathReport = {
      benchmark: 'data-path',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: ['node', path.relative(process.cwd(), process.argv[1] ?? 'dist/bench/data-path/main.js'), ...argv].join(' '),
      machine: machineInfo(),
      tools: { socat, ser2net: ser2net ?? null },
      options: shown,
      units: { roundTrip: 'µs', throughput: 'MB/s (10^6 bytes per second)' },
      paths,
      versusDirect: versusDirect(paths),
      versusSer2net: versusSer2net(paths),
      targets: targetsOf(paths),
      ...(profiles.length > 0 ? { profiles } : {}),
    };
    const profileText = profiles.map((p) => formatProfile(p.path, p)).join('\n\n');
    writeResults(out, report, profileText ? `${formatReport(report)}\n\nprofiles (timed round trips on fresh ports only):\n${profileText}` : formatReport(report));
    return paths.some(isFailed) ? 1 : 0;
  } finally {
    removeTempDir(root);
  }
}

if (require.main === module) runMain('bench:data-path', main);
