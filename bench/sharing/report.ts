import type { MachineInfo } from '../common/bench-run';
import type { ConsumerRunResult } from './consumer-run';
import type { QueueOverhead } from './queue-overhead';

export interface Target {
  name: string;
  want: string;
  got: number;
  met: boolean;
}

export interface SharingReport {
  benchmark: 'sharing';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  policy: string;
  units: { roundTrip: 'µs'; throughput: 'commands/s' };
  /** One client on the pty itself, no mesh: the device's own limit. */
  baseline: ConsumerRunResult;
  /** N app connections to the one virtual device, through sidecar → socket plane → agent's command queue. */
  shared: ConsumerRunResult[];
  queueOverhead: QueueOverhead;
  targets: Target[];
}

const JAIN_TARGET = 0.95;
const QUEUE_P50_TARGET_US = 50;

export function targetsOf(shared: ConsumerRunResult[], queue: QueueOverhead): Target[] {
  const targets: Target[] = shared
    .filter((r) => r.consumers > 1)
    .map((r) => ({ name: `Jain's index, ${r.consumers} equal consumers`, want: `≥ ${JAIN_TARGET}`, got: r.jain, met: r.jain >= JAIN_TARGET }));
  targets.push({
    name: 'queue overhead per command, p50',
    want: `< ${QUEUE_P50_TARGET_US} µs`,
    got: queue.addedUs.p50,
    met: queue.addedUs.p50 < QUEUE_P50_TARGET_US,
  });
  return targets;
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0))).join('  ');
}

export function formatReport(r: SharingReport): string {
  const widths = [32, 10, 8, 10, 10, 10, 10, 8];
  const ofBaseline = (x: ConsumerRunResult): string => `${Math.round((x.commandsPerSecond / r.baseline.commandsPerSecond) * 100)} %`;
  const line = (label: string, x: ConsumerRunResult): string =>
    row([label, x.commandsPerSecond, ofBaseline(x), x.roundTripUs.p50, x.roundTripUs.p99, x.perConsumerPerSecond.min, x.perConsumerPerSecond.max, x.jain.toFixed(4)], widths);
  const q = r.queueOverhead;
  return [
    `bench:sharing — ${r.startedAt}, ${r.machine.cpus} × ${r.machine.cpuModel}, node ${r.machine.node}`,
    `policy: { ${r.policy} }; each consumer keeps 1 AT command outstanding for ${r.baseline.seconds.toFixed(1)} s; device answers at once`,
    '',
    row(['path', 'cmd/s', 'vs base', 'p50 µs', 'p99 µs', 'min/cons', 'max/cons', 'Jain'], widths),
    line('baseline: 1 client on the pty', r.baseline),
    ...r.shared.map((x) => line(`devicemesh shared, ${x.consumers} consumer${x.consumers === 1 ? '' : 's'}`, x)),
    '',
    `queue overhead (in process, sync fake device, ${q.commands} commands each after ${q.warmup} warm-up):`,
    row(['', 'p50 µs', 'p99 µs'], [32, 10, 10]),
    row(['direct (promise)', q.directUs.p50, q.directUs.p99], [32, 10, 10]),
    row(['CommandQueue + PriorityScheduler', q.queuedUs.p50, q.queuedUs.p99], [32, 10, 10]),
    row(['added by the queue', q.addedUs.p50, q.addedUs.p99], [32, 10, 10]),
    '',
    'targets:',
    ...r.targets.map((t) => `  ${t.name.padEnd(40)} ${t.want.padEnd(9)} got ${String(t.got).padStart(8)}  ${t.met ? 'met' : 'MISSED'}`),
  ].join('\n');
}
