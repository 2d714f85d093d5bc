import type { AdaptationOverview } from '../../src/admin/mesh-overview';
import { ValidationError } from '../../src/errors';
import { formatRate } from './format-rate';
import { type Claimant, maxMinFair } from './max-min-fair';

/** One binding of a device with a set capacity, as the latest load report and its mapping show it. */
export interface BindingLoad {
  mappingId: string;
  binding: string;
  /** The physical endpoint id, e.g. gw1/usb-1. */
  device: string;
  weight: number;
  /** The policy's own bytes_per_second; 0 = none. */
  policyLimit: number;
  /** The adaptive limit in force; 0 = none yet. */
  currentLimit: number;
  bytesPerSecond: number;
  /** It hit its limit in the last window (the agent slowed it or dropped bytes). */
  throttled: boolean;
  /** The policy's min_bytes_per_second; 0 = none. */
  minBytesPerSecond?: number;
}

export interface LimitChange extends AdaptationOverview {
  mappingId: string;
}

export interface AdaptationOptions {
  /** A binding using this fraction of its limit or more wants more (default 0.9). */
  saturation?: number;
  /** A binding that does not want more is expected to need its rate times this (default 1.25). */
  headroom?: number;
  /** This fraction of the capacity left above the minimums is kept as a floor, divided equally (default 0.1). */
  floorFraction?: number;
  /** A device's limits are re-divided only when one of them moves by this fraction or more (default 0.05). */
  minChange?: number;
}

const RATE_METRIC = 'devicemesh_binding_bytes_per_second';

interface Assessed {
  load: BindingLoad;
  /** The limit the binding is held to now; 0 = none. */
  limit: number;
  demand: number;
  /** Why it wants more, when it does. */
  wantsMore: string | undefined;
}

/**
 * The bandwidth controller's one control cycle, pure: from each device's capacity and its
 * bindings' measured load to new per-binding limits. A binding wants more when the agent
 * throttled it or it runs at `saturation` of its limit or above; otherwise its demand is its rate
 * with `headroom`. Each binding keeps a floor (its minimum plus an equal part of `floorFraction`
 * of the rest), so an idle one can start and show demand. The capacity is divided max-min fairly
 * by weight; what no demand takes is spread by weight, so demand that falls relaxes the limits of
 * the others. Host uplinks shared by several devices are not modelled: each device is divided on
 * its own.
 */
export class AdaptationController {
  private readonly saturation: number;
  private readonly headroom: number;
  private readonly floorFraction: number;
  private readonly minChange: number;

  constructor(options: AdaptationOptions = {}) {
    this.saturation = fraction('saturation', options.saturation ?? 0.9, false);
    this.headroom = options.headroom ?? 1.25;
    if (!Number.isFinite(this.headroom) || this.headroom < 1) throw new ValidationError('headroom', `${this.headroom} is not a number of at least 1`);
    this.floorFraction = fraction('floorFraction', options.floorFraction ?? 0.1, true);
    this.minChange = fraction('minChange', options.minChange ?? 0.05, true);
  }

  /**
   * @param capacities device → bytes/s (the bindings' device_bytes_per_second); devices not listed are left alone.
   * @returns the limits that change, only for devices where one moves by `minChange` or more.
   */
  cycle(capacities: ReadonlyMap<string, number>, loads: readonly BindingLoad[], now: number): LimitChange[] {
    const byDevice = new Map<string, BindingLoad[]>();
    for (const load of loads) {
      if (!capacities.has(load.device)) continue;
      const group = byDevice.get(load.device);
      if (group) group.push(load);
      else byDevice.set(load.device, [load]);
    }
    const changes: LimitChange[] = [];
    for (const [device, group] of byDevice) changes.push(...this.divide(device, capacities.get(device) as number, group, now));
    return changes;
  }

  private divide(device: string, capacity: number, loads: readonly BindingLoad[], now: number): LimitChange[] {
    if (!(capacity > 0)) return [];
    const assessed = loads.map((load) => this.assess(load));
    const minimums = assessed.reduce((s, a) => s + (a.load.minBytesPerSecond ?? 0), 0);
    const spareFloor = (this.floorFraction * Math.max(0, capacity - minimums)) / loads.length;
    const claimants: Claimant[] = assessed.map(({ load, demand }) => ({
      id: load.mappingId,
      weight: claimantWeight(load),
      demand,
      floor: (load.minBytesPerSecond ?? 0) + spareFloor,
    }));
    const shares = maxMinFair(capacity, claimants);
    const targets = assessed.map((a) => {
      const share = shares.get(a.load.mappingId) as number;
      const capped = a.load.policyLimit > 0 ? Math.min(share, a.load.policyLimit) : share;
      // 0 would read as "no limit" on the wire: the least limit is 1 byte/s.
      return Math.max(1, Math.floor(capped));
    });
    // Hysteresis per device: re-divided only when a limit moves enough, and then all together,
    // so that the limits in force never add up to more than the capacity.
    const moved = assessed.some((a, i) => {
      const from = a.load.currentLimit;
      return from <= 0 || Math.abs((targets[i] as number) - from) >= this.minChange * from;
    });
    if (!moved) return [];
    const why = this.deviceReason(device, capacity, assessed);
    const changes: LimitChange[] = [];
    assessed.forEach((a, i) => {
      const to = targets[i] as number;
      const { load } = a;
      if (to === load.currentLimit) return;
      const mine = a.wantsMore ? `wants more (${a.wantsMore})` : `demand ${formatRate(a.demand)}`;
      changes.push({
        mappingId: load.mappingId,
        binding: load.binding,
        device,
        from: load.currentLimit,
        to,
        reason: `${why}; binding ${load.binding}: ${formatRate(load.bytesPerSecond)} (${RATE_METRIC}), ${mine}, weight ${claimantWeight(load)}`,
        at: now,
      });
    });
    return changes;
  }

  private assess(load: BindingLoad): Assessed {
    const limit = load.currentLimit > 0 ? load.currentLimit : load.policyLimit;
    const nearLimit = limit > 0 && load.bytesPerSecond >= this.saturation * limit;
    const wantsMore = load.throttled
      ? 'throttled'
      : nearLimit
        ? `at ${Math.round((100 * load.bytesPerSecond) / limit)}% of its ${formatRate(limit)} limit`
        : undefined;
    const wanted = wantsMore ? Infinity : load.bytesPerSecond * this.headroom;
    // Above its policy's own limit a binding cannot go, whatever it wants.
    const demand = load.policyLimit > 0 ? Math.min(wanted, load.policyLimit) : wanted;
    return { load, limit, demand, wantsMore };
  }

  private deviceReason(device: string, capacity: number, assessed: readonly Assessed[]): string {
    const total = assessed.reduce((s, a) => s + a.load.bytesPerSecond, 0);
    const wanting = assessed.filter((a) => a.wantsMore);
    const usage = `${formatRate(total)} of ${formatRate(capacity)} (sum of ${RATE_METRIC})`;
    if (wanting.length === 0) {
      return total >= this.saturation * capacity
        ? `device ${device} saturated: ${usage}; no binding at its limit`
        : `device ${device} has room: ${usage}; no binding wants more`;
    }
    const who = wanting.map((a) => `${a.load.binding} (${a.wantsMore})`).join(', ');
    const count = wanting.length === 1 ? '1 binding wants' : `${wanting.length} bindings want`;
    return `device ${device} saturated: ${usage}; ${count} more: ${who}`;
  }
}

function claimantWeight(load: BindingLoad): number {
  return load.weight > 0 ? load.weight : 1;
}

function fraction(name: string, value: number, zeroAllowed: boolean): number {
  if (!Number.isFinite(value) || value > 1 || value < 0 || (!zeroAllowed && value === 0)) {
    throw new ValidationError(name, `${value} is not a fraction in ${zeroAllowed ? '[0, 1]' : '(0, 1]'}`);
  }
  return value;
}
