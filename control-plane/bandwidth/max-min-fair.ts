import { ValidationError } from '../../src/errors';

export interface Claimant {
  id: string;
  /** Share per unit of weight: twice the weight, twice the share while both want more. */
  weight: number;
  /** What it would use; Infinity = more than any share it could get. */
  demand: number;
  /** What it gets whatever the others want (scaled down only if the floors alone exceed the capacity). */
  floor?: number;
}

/**
 * Weighted max-min fair division of `capacity` (water-filling): a level λ rises, each claimant
 * holding λ × weight, never below its floor and never above its demand, until the capacity is
 * used up; a claimant whose demand is met stops and leaves the rest to the others. Capacity left
 * once every demand is met is spread by weight on top, so the shares (relaxed limits) are each at
 * least the demand and add up to the capacity: a claimant whose demand grows has room at once.
 * Floating-point sums may exceed the capacity by a rounding error; callers that need integers floor.
 */
export function maxMinFair(capacity: number, claimants: readonly Claimant[]): Map<string, number> {
  check(capacity, claimants);
  const shares = new Map<string, number>();
  if (claimants.length === 0) return shares;
  const lo = claimants.map((c) => c.floor ?? 0);
  const hi = claimants.map((c, i) => Math.max(c.demand, lo[i] as number));
  const sumLo = sum(lo);
  if (sumLo >= capacity) {
    // Not even the floors fit: each gets the same fraction of its floor.
    const scale = sumLo === 0 ? 0 : capacity / sumLo;
    claimants.forEach((c, i) => shares.set(c.id, (lo[i] as number) * scale));
    return shares;
  }
  const sumHi = sum(hi);
  if (sumHi <= capacity) {
    const spare = capacity - sumHi;
    const weights = sum(claimants.map((c) => c.weight));
    claimants.forEach((c, i) => shares.set(c.id, (hi[i] as number) + (spare * c.weight) / weights));
    return shares;
  }
  const level = waterLevel(capacity, claimants, lo, hi);
  claimants.forEach((c, i) => shares.set(c.id, clamp(level * c.weight, lo[i] as number, hi[i] as number)));
  return shares;
}

/**
 * The λ at which Σ clamp(λ·wᵢ, loᵢ, hiᵢ) = capacity, given Σlo < capacity < Σhi. The sum is
 * piecewise linear in λ with a kink where a claimant leaves its floor (lo/w) or reaches its demand
 * (hi/w): find the segment holding the capacity and solve on it.
 */
function waterLevel(capacity: number, claimants: readonly Claimant[], lo: readonly number[], hi: readonly number[]): number {
  const fill = (level: number): number => claimants.reduce((s, c, i) => s + clamp(level * c.weight, lo[i] as number, hi[i] as number), 0);
  const kinks = [...new Set(claimants.flatMap((c, i) => [(lo[i] as number) / c.weight, (hi[i] as number) / c.weight]))]
    .filter((k) => Number.isFinite(k) && k > 0)
    .sort((a, b) => a - b);
  let from = 0;
  let filled = fill(0);
  for (const kink of kinks) {
    const at = fill(kink);
    if (at >= capacity) return from + ((capacity - filled) * (kink - from)) / (at - filled);
    from = kink;
    filled = at;
  }
  // Past the last kink only the claimants with infinite demand still grow (there is one, since Σhi > capacity).
  const slope = claimants.reduce((s, c, i) => s + (hi[i] === Infinity ? c.weight : 0), 0);
  return from + (capacity - filled) / slope;
}

function check(capacity: number, claimants: readonly Claimant[]): void {
  if (!Number.isFinite(capacity) || capacity < 0) throw new ValidationError('capacity', `${capacity} is not a finite non-negative number`);
  const ids = new Set<string>();
  for (const c of claimants) {
    if (ids.has(c.id)) throw new ValidationError(`claimant/${c.id}`, 'appears more than once');
    ids.add(c.id);
    if (!Number.isFinite(c.weight) || c.weight <= 0) throw new ValidationError(`claimant/${c.id}: weight`, `${c.weight} is not a positive number`);
    if (Number.isNaN(c.demand) || c.demand < 0) throw new ValidationError(`claimant/${c.id}: demand`, `${c.demand} is not a non-negative number`);
    if (c.floor !== undefined && (!Number.isFinite(c.floor) || c.floor < 0)) {
      throw new ValidationError(`claimant/${c.id}: floor`, `${c.floor} is not a finite non-negative number`);
    }
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function sum(values: readonly number[]): number {
  return values.reduce((s, v) => s + v, 0);
}
