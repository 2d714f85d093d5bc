import type { MachineInfo } from '../common/bench-run';
import type { Percentiles } from '../sharing/stats';

/** Issue 17's ceiling on each command's wall time, ms. */
export const WALL_TARGET_MS = 300;

export interface CommandTiming {
  name: string;
  argv: string[];
  /** Milliseconds, over the timed runs. */
  wallMs: Percentiles;
  cpuMs: Percentiles;
  /** From one extra run with the memory probe: what the command loaded. */
  modules: number;
  protoFiles: string[];
  rssMB: number;
}

export interface CliStartupReport {
  benchmark: 'cli-startup';
  startedAt: string;
  machine: MachineInfo;
  options: { runs: number; quick: boolean };
  /** `node -e 0` first, the floor; then each devicemesh command. */
  commands: CommandTiming[];
  targets: { name: string; limitMs: number; measuredMs: number; met: boolean }[];
}

export const BASELINE = 'node -e 0';

export function targetsOf(commands: readonly CommandTiming[]): CliStartupReport['targets'] {
  return commands
    .filter((c) => c.name !== BASELINE)
    .map((c) => ({ name: `${c.name} wall p50`, limitMs: WALL_TARGET_MS, measuredMs: c.wallMs.p50, met: c.wallMs.p50 <= WALL_TARGET_MS }));
}

export function formatReport(r: CliStartupReport): string {
  const row = (c: CommandTiming): string =>
    [
      c.name.padEnd(34),
      `${c.wallMs.p50}`.padStart(8),
      `${c.wallMs.max}`.padStart(8),
      `${c.cpuMs.p50}`.padStart(8),
      `${c.modules}`.padStart(7),
      `${c.protoFiles.length}`.padStart(7),
      `${c.rssMB}`.padStart(7),
    ].join(' ');
  return [
    `CLI start-up: ${r.options.runs} runs of each command, taken in turn, against a running control plane (secure default)`,
    `${''.padEnd(34)}  wall p50  wall max  cpu p50  modules  protos  RSS MB   (ms)`,
    ...r.commands.map(row),
    '',
    ...r.targets.map((t) => `  ${t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${t.measuredMs} ms (limit ${t.limitMs} ms)`),
    `CPU is counted in ticks of ${1000 / 100} ms. machine: ${r.machine.cpus} × ${r.machine.cpuModel}, load ${r.machine.loadAverage.join(' ')}`,
  ].join('\n');
}
