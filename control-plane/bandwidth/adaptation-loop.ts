import { errorMessage } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { AdaptiveLimit, Mapping } from '../../src/proto/types';
import type { Labels, Stats } from '../../src/telemetry/stats';
import { AdaptationController, type BindingLoad, type LimitChange } from './adaptation-controller';
import { AdaptationEvents } from './adaptation-events';
import type { LoadReports } from './load-reports';

/** What the loop needs of the control-plane state. */
export interface AdaptiveState {
  mappings(): Mapping[];
  /** Resolves with the new version and the ids of the mappings whose limit was set (not withdrawn meanwhile). */
  setAdaptiveLimits(limits: ReadonlyMap<string, AdaptiveLimit>): Promise<{ version: string; applied: string[] }>;
}

export interface AdaptationLoopOptions {
  state: AdaptiveState;
  reports: LoadReports;
  stats: Stats;
  log: Logger;
  /** One control cycle every this many milliseconds. */
  intervalMs: number;
  controller?: AdaptationController;
  events?: AdaptationEvents;
  /** A host's report older than this is not acted on (default: 3 cycles, at least 5 s). */
  staleAfterMs?: number;
  /**
   * After a device's limits change, its bindings are re-divided only on a report received this
   * much later (default 1 s, the agent's measurement window): a report must measure the new
   * limits, not the old ones, or the controller would answer its own last step and oscillate.
   */
  settleMs?: number;
  /** Wall clock in ms: report ages and the changes' times (default Date.now). */
  clock?: () => number;
}

export const ADAPTATION_STATS_HELP: Readonly<Record<string, string>> = {
  binding_bytes_per_second: 'A binding’s throughput as its agent last reported it (moving rate), by binding',
  binding_commands_per_second: 'A binding’s commands per second as its agent last reported it, by binding',
  adaptive_limit_bytes_per_second: 'The bandwidth controller’s limit in force for a binding of a device with a capacity (0 = none yet), by binding',
  device_bytes_per_second: 'A device’s throughput as its agent last reported it, by device',
  device_capacity_bytes_per_second: 'A device’s capacity (device_bytes_per_second of its bindings), divided among them, by device',
  adaptive_limit_changes: 'Adaptive limits changed by the bandwidth controller, by device',
  adaptation_cycles: 'Control cycles the bandwidth controller has completed; the gauges above are those of the latest',
};

/**
 * The control plane's bandwidth loop, the I/O around the pure AdaptationController: every
 * interval it reads the mappings and the agents' latest load reports, runs one cycle for the
 * devices whose bindings set a capacity, writes the changed limits into their mappings (one
 * commit: a new version, pushed as any change is), logs and records each change, and exports
 * the rates and limits as gauges. A device whose host has not reported lately keeps its limits:
 * no measurement, no change.
 */
export class AdaptationLoop {
  readonly events: AdaptationEvents;
  private readonly controller: AdaptationController;
  private readonly clock: () => number;
  private readonly staleAfterMs: number;
  private readonly settleMs: number;
  /** When each device's limits last changed. */
  private readonly changedAt = new Map<string, number>();
  /** The gauge series set by the last cycle, so that those of withdrawn bindings read 0. */
  private shown = new Map<string, { name: string; labels: Labels }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private closed = false;
  private cycles = 0;

  constructor(private readonly options: AdaptationLoopOptions) {
    this.controller = options.controller ?? new AdaptationController();
    this.events = options.events ?? new AdaptationEvents();
    this.clock = options.clock ?? Date.now;
    this.staleAfterMs = options.staleAfterMs ?? Math.max(5000, 3 * options.intervalMs);
    this.settleMs = options.settleMs ?? 1000;
    for (const [name, help] of Object.entries(ADAPTATION_STATS_HELP)) options.stats.describe(name, help);
    options.stats.add('adaptation_cycles', 0);
  }

  start(): void {
    if (this.closed || this.timer) return;
    const tick = (): void => {
      this.running = this.cycle()
        .catch((err: unknown) => this.options.log.warn({ error: errorMessage(err) }, 'bandwidth control cycle failed; the next one tries again'))
        .finally(() => {
          this.running = undefined;
          if (!this.closed) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.options.intervalMs);
  }

  /** Stops the loop once the cycle under way, if any, has finished. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One control cycle; returns the changes it committed. */
  async cycle(): Promise<LimitChange[]> {
    const number = this.cycles + 1;
    try {
      return await this.run(number);
    } finally {
      // Counted once its gauges are set: a reader of /stats sees a cycle's count and its figures together.
      this.cycles = number;
      this.options.stats.add('adaptation_cycles', 1);
    }
  }

  private async run(cycle: number): Promise<LimitChange[]> {
    const { state, reports, stats, log } = this.options;
    const mappings = state.mappings();
    const capacities = new Map<string, number>();
    const loads: BindingLoad[] = [];
    const gauges = new Map<string, { name: string; labels: Labels; value: number }>();
    const gauge = (name: string, labels: Labels, value: number): void => {
      gauges.set(`${name}|${Object.values(labels).join('|')}`, { name, labels, value });
    };
    const now = this.clock();
    for (const m of mappings) {
      const policy = m.policy;
      const capacity = Number(policy?.deviceBytesPerSecond ?? '0');
      const report = reports.fresh(m.hostId, this.staleAfterMs);
      const measured = report?.bindings.get(m.id);
      if (measured) {
        gauge('binding_bytes_per_second', { binding: m.binding }, measured.bytesPerSecond);
        gauge('binding_commands_per_second', { binding: m.binding }, measured.commandsPerSecond);
      }
      const deviceRate = report?.devices.get(m.physicalId);
      if (deviceRate !== undefined) gauge('device_bytes_per_second', { device: m.physicalId }, deviceRate);
      if (!policy || capacity <= 0) continue;
      gauge('device_capacity_bytes_per_second', { device: m.physicalId }, capacity);
      if (!report || report.receivedAt < (this.changedAt.get(m.physicalId) ?? -Infinity) + this.settleMs) continue;
      capacities.set(m.physicalId, Math.max(capacities.get(m.physicalId) ?? 0, capacity));
      loads.push({
        mappingId: m.id,
        binding: m.binding,
        device: m.physicalId,
        weight: policy.weight,
        policyLimit: Number(policy.bytesPerSecond),
        currentLimit: Number(m.adaptiveLimit?.bytesPerSecond ?? '0'),
        // Not listed in its host's report: no session, idle.
        bytesPerSecond: measured?.bytesPerSecond ?? 0,
        throttled: measured?.throttled ?? false,
        minBytesPerSecond: Number(policy.minBytesPerSecond),
      });
    }

    const decided = this.controller.cycle(capacities, loads, now);
    let changes: LimitChange[] = [];
    if (decided.length > 0) {
      const limits = new Map(decided.map((c) => [c.mappingId, { bytesPerSecond: String(c.to), reason: c.reason, changedAtMs: String(c.at) }]));
      const { version, applied } = await state.setAdaptiveLimits(limits);
      const committedAt = this.clock();
      const set = new Set(applied);
      changes = decided.filter((c) => set.has(c.mappingId));
      for (const c of changes) {
        this.changedAt.set(c.device, committedAt);
        stats.add('adaptive_limit_changes', 1, { device: c.device });
        this.events.add({ ...c, cycle, version });
        const { binding, mappingId: mapping, device, from, to, reason } = c;
        log.info({ binding, mapping, device, from, to, reason, cycle, version }, 'adaptive limit changed');
      }
    }
    for (const m of state.mappings()) {
      if (Number(m.policy?.deviceBytesPerSecond ?? '0') === 0) continue;
      gauge('adaptive_limit_bytes_per_second', { binding: m.binding }, Number(m.adaptiveLimit?.bytesPerSecond ?? '0'));
    }
    this.export(gauges);
    return changes;
  }

  private export(gauges: ReadonlyMap<string, { name: string; labels: Labels; value: number }>): void {
    const { stats } = this.options;
    for (const [key, series] of this.shown) if (!gauges.has(key)) stats.set(series.name, 0, series.labels);
    for (const g of gauges.values()) stats.set(g.name, g.value, g.labels);
    this.shown = new Map(gauges);
  }
}
