import { strict as assert } from 'node:assert';
import { AdaptationController, type BindingLoad, type LimitChange } from '../../../control-plane/bandwidth/adaptation-controller';
import { ValidationError } from '../../../src/errors';

const DEVICE = 'gw1/usb-1';
const CAPACITY = new Map([[DEVICE, 10_000]]);

function load(binding: string, overrides: Partial<BindingLoad> = {}): BindingLoad {
  return { mappingId: `${binding}-id`, binding, device: DEVICE, weight: 1, policyLimit: 0, currentLimit: 0, bytesPerSecond: 0, throttled: false, ...overrides };
}

/** Runs cycles the way the control plane does: each change becomes the binding's current limit. */
class Plant {
  readonly limits = new Map<string, number>();
  constructor(readonly controller = new AdaptationController()) {}

  cycle(loads: readonly BindingLoad[], now = 0): LimitChange[] {
    const changes = this.controller.cycle(CAPACITY, loads.map((l) => ({ ...l, currentLimit: this.limits.get(l.binding) ?? 0 })), now);
    for (const c of changes) this.limits.set(c.binding, c.to);
    return changes;
  }

  limit(binding: string): number {
    return this.limits.get(binding) ?? 0;
  }
}

/** A sender that would go faster: it runs at its limit and the agent throttles it. */
function saturating(plant: Plant, binding: string, weight = 1): BindingLoad {
  return load(binding, { weight, bytesPerSecond: plant.limit(binding) || 5000, throttled: plant.limit(binding) > 0 });
}

describe('bandwidth: adaptation controller', () => {
  it('re-divides a saturated device when a third binding starts, and gives the capacity back when it stops', () => {
    const plant = new Plant();
    plant.cycle([saturating(plant, 'a'), saturating(plant, 'b'), load('c')]);
    plant.cycle([saturating(plant, 'a'), saturating(plant, 'b'), load('c')]);
    const before = [plant.limit('a'), plant.limit('b'), plant.limit('c')];
    // c keeps a floor of a tenth of the capacity shared by three; a and b split the rest.
    assert.deepEqual(before, [4833, 4833, 333]);

    // c starts: it hits its floor limit, and is throttled.
    const started = plant.cycle([saturating(plant, 'a'), saturating(plant, 'b'), load('c', { bytesPerSecond: 333, throttled: true })]);
    assert.deepEqual([plant.limit('a'), plant.limit('b'), plant.limit('c')], [3333, 3333, 3333]);
    assert.equal(started.length, 3);
    const forC = started.find((c) => c.binding === 'c') as LimitChange;
    assert.equal(forC.from, 333);
    assert.match(
      forC.reason,
      /^device gw1\/usb-1 saturated: 10\.0 kB\/s of 10\.0 kB\/s \(sum of devicemesh_binding_bytes_per_second\); 3 bindings want more: a \(throttled\), b \(throttled\), c \(throttled\)/,
    );
    assert.match(forC.reason, /binding c: 333 B\/s \(devicemesh_binding_bytes_per_second\), wants more \(throttled\), weight 1$/);
    assert.deepEqual(plant.cycle([saturating(plant, 'a'), saturating(plant, 'b'), saturating(plant, 'c')]), [], 'stable while all three saturate');

    // c stops.
    const stopped = plant.cycle([saturating(plant, 'a'), saturating(plant, 'b'), load('c')]);
    assert.deepEqual([plant.limit('a'), plant.limit('b'), plant.limit('c')], [4833, 4833, 333]);
    assert.match((stopped.find((c) => c.binding === 'c') as LimitChange).reason, /binding c: 0 B\/s \(devicemesh_binding_bytes_per_second\), demand 0 B\/s/);
  });

  it('divides by weight', () => {
    const plant = new Plant(new AdaptationController({ floorFraction: 0 }));
    plant.cycle([saturating(plant, 'a', 3), saturating(plant, 'b', 1)]);
    plant.cycle([saturating(plant, 'a', 3), saturating(plant, 'b', 1)]);
    assert.deepEqual([plant.limit('a'), plant.limit('b')], [7500, 2500]);
  });

  it('relaxes when demand falls: what the demands leave is spread by weight', () => {
    const plant = new Plant();
    plant.cycle([saturating(plant, 'a'), saturating(plant, 'b')]);
    const changes = plant.cycle([load('a', { bytesPerSecond: 1000 }), load('b', { bytesPerSecond: 1000 })]);
    // Each needs 1.25 kB/s; the rest of the 10 kB/s is shared equally: no limit falls below the demand.
    assert.deepEqual([plant.limit('a'), plant.limit('b')], [5000, 5000]);
    assert.deepEqual(changes, [], 'already there: nothing to change');
    // a runs at 92% of its limit and wants more; b needs 250 B/s and keeps its floor of 500.
    plant.cycle([load('a', { bytesPerSecond: 4600 }), load('b', { bytesPerSecond: 200 })]);
    assert.deepEqual([plant.limit('a'), plant.limit('b')], [9500, 500]);
  });

  it('keeps a binding within its policy limit and at least its minimum', () => {
    const controller = new AdaptationController();
    const changes = controller.cycle(
      CAPACITY,
      [load('a', { throttled: true, policyLimit: 2000 }), load('b', { throttled: true, minBytesPerSecond: 1000 }), load('c', { minBytesPerSecond: 3000 })],
      42,
    );
    const to = new Map(changes.map((c) => [c.binding, c.to]));
    assert.equal(to.get('a'), 2000);
    assert.ok((to.get('c') as number) >= 3000);
    assert.ok((to.get('b') as number) >= 1000);
    assert.ok([...to.values()].reduce((s, v) => s + v, 0) <= 10_000);
    assert.ok(changes.every((c) => c.at === 42 && c.from === 0));
  });

  it('ignores small moves (hysteresis per device), and devices without a capacity', () => {
    const controller = new AdaptationController({ minChange: 0.1 });
    const limits = { a: 5000, b: 5000 };
    const loads = [load('a', { currentLimit: limits.a, bytesPerSecond: 3800 }), load('b', { currentLimit: limits.b, bytesPerSecond: 4900, throttled: true })];
    // a's demand 4.75 kB/s leaves b 5.25 kB/s: a 5% move, below the 10% threshold.
    assert.deepEqual(controller.cycle(CAPACITY, loads, 0), []);
    assert.deepEqual(controller.cycle(new Map(), loads, 0), []);
    assert.deepEqual(controller.cycle(new Map([[DEVICE, 0]]), loads, 0), []);
  });

  it('refuses options out of range', () => {
    assert.throws(() => new AdaptationController({ saturation: 0 }), ValidationError);
    assert.throws(() => new AdaptationController({ headroom: 0.5 }), ValidationError);
    assert.throws(() => new AdaptationController({ floorFraction: 2 }), ValidationError);
    assert.throws(() => new AdaptationController({ minChange: Number.NaN }), ValidationError);
  });
});
