import type { MachineInfo } from '../common/bench-run';
import type { ResidentMemory } from '../common/process-memory';
import type { ProbeSnapshot } from './memory-probe';

/** The measured processes, the bare one first as the floor. */
export const MEASURED = ['bare-node', 'sidecar', 'agent', 'control-plane'] as const;
export type Measured = (typeof MEASURED)[number];

/** Issue 17's ceilings, MB: idle RSS with one binding, and growth under the round-trip load. */
export const IDLE_TARGET_MB: Readonly<Record<Exclude<Measured, 'bare-node'>, number>> = { sidecar: 50, agent: 70, 'control-plane': 90 };
export const GROWTH_TARGET_MB = 10;
const GROWTH_MEASURED: readonly Measured[] = ['sidecar', 'agent'];

export interface ProcessFootprint {
  idle: ResidentMemory;
  /** What the process says of itself when idle. */
  idleProbe: ProbeSnapshot;
  /** The highest RSS sampled (every 250 ms) during the load. */
  loadPeak: ResidentMemory;
  /** Right after the load. */
  afterLoad: ResidentMemory;
  afterLoadProbe: ProbeSnapshot;
  /** afterLoad − idle, and peak − idle, RSS MB. */
  growthMB: number;
  peakGrowthMB: number;
}

export interface FootprintReport {
  benchmark: 'footprint';
  startedAt: string;
  machine: MachineInfo;
  options: { settleSeconds: number; loadSeconds: number; messageBytes: number; quick: boolean };
  load: { roundTrips: number; seconds: number };
  processes: Record<Measured, ProcessFootprint>;
  targets: { name: string; limitMB: number; measuredMB: number; met: boolean }[];
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

export function targetsOf(processes: Readonly<Record<Measured, ProcessFootprint>>): FootprintReport['targets'] {
  const idle = (Object.entries(IDLE_TARGET_MB) as [Measured, number][]).map(([name, limitMB]) => {
    const measuredMB = processes[name].idle.rssMB;
    return { name: `${name} idle RSS`, limitMB, measuredMB, met: measuredMB <= limitMB };
  });
  const growth = GROWTH_MEASURED.map((name) => {
    const measuredMB = Math.max(processes[name].growthMB, processes[name].peakGrowthMB);
    return { name: `${name} growth under load`, limitMB: GROWTH_TARGET_MB, measuredMB, met: measuredMB < GROWTH_TARGET_MB };
  });
  return [...idle, ...growth];
}

export function growthOf(idle: ResidentMemory, later: ResidentMemory): number {
  return round1(later.rssMB - idle.rssMB);
}

export function formatReport(r: FootprintReport): string {
  const row = (name: Measured): string => {
    const p = r.processes[name];
    const probe = p.idleProbe;
    return [
      name.padEnd(15),
      `${p.idle.rssMB}`.padStart(6),
      `${p.idle.anonMB}`.padStart(6),
      `${p.idle.fileMB}`.padStart(6),
      `${probe.memoryMB.heapUsed}/${probe.memoryMB.heapTotal}`.padStart(12),
      `${probe.memoryMB.external}`.padStart(6),
      `${probe.modules}`.padStart(6),
      `${probe.protoFiles.length}`.padStart(6),
      `${p.loadPeak.rssMB}`.padStart(7),
      `${p.afterLoad.rssMB}`.padStart(7),
      `${p.growthMB >= 0 ? '+' : ''}${p.growthMB}`.padStart(7),
    ].join(' ');
  };
  return [
    `Idle footprint with one binding (secure default), then ${r.load.roundTrips} round trips of ${r.options.messageBytes} bytes in ${r.load.seconds} s`,
    '                  RSS   anon   file  heap used/tot   ext  mods  protos   peak   after  growth   (MB)',
    ...MEASURED.map(row),
    '',
    ...r.targets.map((t) => `  ${t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${t.measuredMB} MB (limit ${t.limitMB} MB)`),
    `machine: ${r.machine.cpus} × ${r.machine.cpuModel}, load ${r.machine.loadAverage.join(' ')}`,
  ].join('\n');
}
