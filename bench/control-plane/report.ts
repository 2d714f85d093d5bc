import type { MachineInfo } from '../common/bench-run';
import type { AdsProtocol } from '../../src/xds/protocols';
import type { Registration } from './mesh';
import type { BenchOptions } from './options';

/** Milliseconds unless the field says otherwise. */
export interface Distribution {
  samples: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface RunResult {
  protocol: AdsProtocol;
  proxies: number;
  endpoints: number;
  /** One Apply with the shared policy and every binding. */
  applyBindingsMs: number;
  /** From starting every sidecar's client until each has applied its mapping. */
  connectAllMs: number;
  /** Apply of one binding → the affected sidecar's `applied` event (it ACKs then). */
  oneBindingChangeToAckMs: Distribution;
  /** The Apply call alone (validate, regenerate, persist) in the same samples. */
  oneBindingApplyRpcMs: Distribution;
  /** Apply of the shared policy → the last sidecar's `applied` event. */
  allProxiesChangeToLastAckMs: Distribution;
  controlPlane: {
    rssMB: { connectedIdle: number; maxSampled: number; peak: number };
    /** utime + stime over wall time, 100 = one core busy. */
    cpuPercentOfOneCore: { idle: number; changes: number };
    idleWindowMs: number;
  };
}

export interface FailedRun {
  protocol: AdsProtocol;
  proxies: number;
  endpoints: number;
  error: string;
}

export interface Target {
  protocol: AdsProtocol;
  proxies: number;
  name: string;
  value: number;
  limit: number;
  unit: 'ms' | 'MB';
  met: boolean;
}

export interface BenchReport {
  benchmark: 'control-plane';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  options: Omit<BenchOptions, 'out'>;
  delta: { available: boolean; note: string };
  registration: Registration;
  runs: (RunResult | FailedRun)[];
  targets: Target[];
}

export function isFailed(run: RunResult | FailedRun): run is FailedRun {
  return 'error' in run;
}

/** Nearest-rank percentiles: every figure is a value that was measured. */
export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
  return {
    samples: sorted.length,
    p50: round(rank(50)),
    p99: round(rank(99)),
    max: round(sorted[sorted.length - 1] as number),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The issue's acceptance targets; they apply to runs with 1,000 sidecars. */
const TARGET_PROXIES = 1000;

export function targetsOf(run: RunResult): Target[] {
  if (run.proxies !== TARGET_PROXIES) return [];
  const t = (name: string, value: number, limit: number, unit: Target['unit']): Target => ({
    protocol: run.protocol,
    proxies: run.proxies,
    name,
    value,
    limit,
    unit,
    met: value < limit,
  });
  return [
    t('one-binding change ACKed, p99', run.oneBindingChangeToAckMs.p99, 50, 'ms'),
    t('change to all proxies ACKed, worst sample', run.allProxiesChangeToLastAckMs.max, 2000, 'ms'),
    t('control-plane RSS, peak (VmHWM)', run.controlPlane.rssMB.peak, 300, 'MB'),
  ];
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatReport(r: BenchReport): string {
  const m = r.machine;
  const reg = r.registration;
  const out = [
    `devicemesh control-plane benchmark — ${m.cpus} × ${m.cpuModel}, ${m.memoryMB} MB, Node ${m.node}`,
    `${r.options.endpoints} endpoints registered in ${(reg.totalMs / 1000).toFixed(1)} s ` +
      `(${reg.perSecond.toFixed(0)}/s overall; ${reg.firstTenthPerSecond.toFixed(0)}/s first tenth, ${reg.lastTenthPerSecond.toFixed(0)}/s last tenth)`,
    `${r.options.samples} one-binding changes and ${r.options.fanoutSamples} changes to all proxies per run, one after another`,
  ];
  if (!r.delta.available) out.push(`note: ${r.delta.note}`);
  out.push('');
  const ok = r.runs.filter((x): x is RunResult => !isFailed(x));
  out.push(
    'change → ACK (ms): from the Apply call to the sidecar\'s applied event',
    table(
      ['protocol', 'proxies', '1 binding p50', 'p99', 'max', 'its Apply RPC p50', 'all proxies, last ACK p50', 'max', 'connect all'],
      ok.map((x) => [
        x.protocol,
        String(x.proxies),
        x.oneBindingChangeToAckMs.p50.toFixed(1),
        x.oneBindingChangeToAckMs.p99.toFixed(1),
        x.oneBindingChangeToAckMs.max.toFixed(1),
        x.oneBindingApplyRpcMs.p50.toFixed(1),
        x.allProxiesChangeToLastAckMs.p50.toFixed(0),
        x.allProxiesChangeToLastAckMs.max.toFixed(0),
        x.connectAllMs.toFixed(0),
      ]),
    ),
    '',
    'control-plane process: RSS (MB) and CPU (% of one core)',
    table(
      ['protocol', 'proxies', 'RSS connected, idle', 'RSS max sampled', 'RSS peak (VmHWM)', 'CPU idle', 'CPU during changes'],
      ok.map((x) => [
        x.protocol,
        String(x.proxies),
        x.controlPlane.rssMB.connectedIdle.toFixed(0),
        x.controlPlane.rssMB.maxSampled.toFixed(0),
        x.controlPlane.rssMB.peak.toFixed(0),
        x.controlPlane.cpuPercentOfOneCore.idle.toFixed(1),
        x.controlPlane.cpuPercentOfOneCore.changes.toFixed(0),
      ]),
    ),
  );
  for (const f of r.runs.filter(isFailed)) out.push(`FAILED ${f.protocol} with ${f.proxies} proxies: ${f.error}`);
  out.push('');
  if (r.targets.length === 0) {
    out.push(`targets apply to ${TARGET_PROXIES} proxies with 10000 endpoints; none measured in this run`);
  } else {
    out.push(`targets (${TARGET_PROXIES} proxies, ${r.options.endpoints} endpoints; reported, not enforced):`);
    for (const t of r.targets) {
      out.push(`  ${t.protocol.padEnd(5)} ${t.name.padEnd(44)} ${`${t.value.toFixed(t.unit === 'MB' ? 0 : 1)} ${t.unit}`.padStart(12)}  < ${t.limit} ${t.unit}  ${t.met ? 'met' : 'MISSED'}`);
    }
  }
  return out.join('\n');
}
