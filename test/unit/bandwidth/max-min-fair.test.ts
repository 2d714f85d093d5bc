import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { type Claimant, maxMinFair } from '../../../control-plane/bandwidth/max-min-fair';
import { ValidationError } from '../../../src/errors';

const EPSILON = 1e-9;

const claimantsArb = fc
  .array(
    fc.record({
      weight: fc.integer({ min: 1, max: 10 }),
      demand: fc.oneof(fc.constant(Infinity), fc.double({ min: 0, max: 50_000, noNaN: true })),
      floor: fc.option(fc.double({ min: 0, max: 2000, noNaN: true }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 12 },
  )
  .map((cs) => cs.map((c, i): Claimant => ({ id: `c${i}`, weight: c.weight, demand: c.demand, ...(c.floor === undefined ? {} : { floor: c.floor }) })));
const capacityArb = fc.double({ min: 0, max: 100_000, noNaN: true });

function total(shares: Map<string, number>): number {
  return [...shares.values()].reduce((s, v) => s + v, 0);
}

describe('bandwidth: weighted max-min fair division', () => {
  it('never gives out more than the capacity, nor a negative share', () => {
    fc.assert(
      fc.property(capacityArb, claimantsArb, (capacity, claimants) => {
        const shares = maxMinFair(capacity, claimants);
        assert.equal(shares.size, claimants.length);
        assert.ok(total(shares) <= capacity * (1 + EPSILON) + EPSILON, `${total(shares)} > ${capacity}`);
        for (const v of shares.values()) assert.ok(v >= 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('gives every claimant its demand when the demands fit, and spreads the rest by weight', () => {
    fc.assert(
      fc.property(capacityArb, claimantsArb, (capacity, claimants) => {
        const shares = maxMinFair(capacity, claimants);
        const need = claimants.reduce((s, c) => s + Math.max(c.demand, c.floor ?? 0), 0);
        if (need > capacity) return;
        for (const c of claimants) assert.ok((shares.get(c.id) as number) >= c.demand - EPSILON * (1 + c.demand), `${c.id} got less than its demand`);
        assert.ok(Math.abs(total(shares) - capacity) <= EPSILON * (1 + capacity), 'the whole capacity is handed out');
      }),
      { numRuns: 2000 },
    );
  });

  it('is max-min fair: a claimant short of its demand has the largest share per weight among those above their floors', () => {
    fc.assert(
      fc.property(capacityArb, claimantsArb, (capacity, claimants) => {
        const shares = maxMinFair(capacity, claimants);
        const floors = claimants.reduce((s, c) => s + (c.floor ?? 0), 0);
        if (floors >= capacity) return;
        const perWeight = (c: Claimant): number => (shares.get(c.id) as number) / c.weight;
        const tol = (x: number): number => 1e-7 * (1 + x);
        for (const short of claimants.filter((c) => (shares.get(c.id) as number) < c.demand - tol(c.demand))) {
          for (const other of claimants) {
            // Only a floor can hold a share above the common level.
            if ((shares.get(other.id) as number) <= (other.floor ?? 0) + tol(other.floor ?? 0)) continue;
            assert.ok(perWeight(other) <= perWeight(short) + tol(perWeight(short)), `${other.id} has more per weight than unsatisfied ${short.id}`);
          }
          // And the capacity is all used: a short claimant would otherwise get more.
          assert.ok(Math.abs(total(shares) - capacity) <= 1e-7 * (1 + capacity));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('gives equal shares to equal weights with infinite demand', () => {
    fc.assert(
      fc.property(capacityArb, fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 5 }), (capacity, n, weight) => {
        const claimants = Array.from({ length: n }, (_, i): Claimant => ({ id: `c${i}`, weight, demand: Infinity }));
        for (const v of maxMinFair(capacity, claimants).values()) assert.ok(Math.abs(v - capacity / n) <= 1e-9 * (1 + capacity));
      }),
      { numRuns: 500 },
    );
  });

  it('divides by weight, and gives what a small demand leaves to the others', () => {
    const shares = maxMinFair(9000, [
      { id: 'a', weight: 2, demand: Infinity },
      { id: 'b', weight: 1, demand: Infinity },
      { id: 'c', weight: 1, demand: 1000 },
    ]);
    const expected = { a: 16000 / 3, b: 8000 / 3, c: 1000 };
    for (const [id, want] of Object.entries(expected)) assert.ok(Math.abs((shares.get(id) as number) - want) < 1e-9, `${id}: ${shares.get(id)}`);
  });

  it('keeps floors, and scales them when they alone exceed the capacity', () => {
    const kept = maxMinFair(1000, [
      { id: 'a', weight: 1, demand: Infinity },
      { id: 'b', weight: 1, demand: 0, floor: 100 },
    ]);
    assert.deepEqual([...kept.values()], [900, 100]);
    const scaled = maxMinFair(100, [
      { id: 'a', weight: 1, demand: Infinity, floor: 150 },
      { id: 'b', weight: 1, demand: 0, floor: 50 },
    ]);
    assert.deepEqual([...scaled.values()], [75, 25]);
  });

  it('refuses duplicate ids, weights that are not positive and demands that are not numbers', () => {
    assert.throws(() => maxMinFair(10, [{ id: 'a', weight: 1, demand: 1 }, { id: 'a', weight: 1, demand: 1 }]), ValidationError);
    assert.throws(() => maxMinFair(10, [{ id: 'a', weight: 0, demand: 1 }]), ValidationError);
    assert.throws(() => maxMinFair(10, [{ id: 'a', weight: 1, demand: Number.NaN }]), ValidationError);
    assert.throws(() => maxMinFair(Infinity, [{ id: 'a', weight: 1, demand: 1 }]), ValidationError);
    assert.throws(() => maxMinFair(10, [{ id: 'a', weight: 1, demand: 1, floor: -1 }]), ValidationError);
    assert.equal(maxMinFair(10, []).size, 0);
  });
});
