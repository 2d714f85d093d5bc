import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { RateMeter } from '../../../../agent/limits/rate-meter';
import { ValidationError } from '../../../../src/errors';

function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 5000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('bandwidth: rate meter', () => {
  it('reads a steady rate as that rate', () => {
    const clock = manualClock();
    const meter = new RateMeter(1000, clock.now);
    for (let i = 0; i < 500; i++) {
      meter.record(100);
      clock.advance(10);
    }
    // 100 bytes per 10 ms, within one 100 ms slot's worth at the window's edge.
    assert.ok(Math.abs(meter.rate() - 10_000) <= 1000, `${meter.rate()}`);
    assert.equal(meter.total, 50_000);
  });

  it('reads 0 one window after the sender stops, and the total stays', () => {
    const clock = manualClock();
    const meter = new RateMeter(1000, clock.now);
    for (let i = 0; i < 100; i++) {
      meter.record(50);
      clock.advance(20);
    }
    clock.advance(500);
    assert.ok(meter.rate() > 0);
    clock.advance(600);
    assert.equal(meter.rate(), 0);
    clock.advance(60_000);
    assert.equal(meter.rate(), 0);
    assert.equal(meter.total, 5000);
  });

  it('does not under-read while younger than its window', () => {
    const clock = manualClock();
    const meter = new RateMeter(1000, clock.now);
    for (let i = 0; i < 30; i++) {
      meter.record(10);
      clock.advance(10);
    }
    // 300 bytes in 300 ms.
    assert.ok(Math.abs(meter.rate() - 1000) < 50, `${meter.rate()}`);
  });

  it('agrees with an exact count of the last window to within one slot', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ amount: fc.integer({ min: 0, max: 10_000 }), waitMs: fc.integer({ min: 0, max: 300 }) }), { minLength: 1, maxLength: 200 }),
        (steps) => {
          const clock = manualClock();
          const start = clock.now();
          const meter = new RateMeter(1000, clock.now);
          const events: { at: number; amount: number }[] = [];
          for (const { amount, waitMs } of steps) {
            meter.record(amount);
            events.push({ at: clock.now(), amount });
            clock.advance(waitMs);
          }
          const t = clock.now();
          const rate = meter.rate();
          // Bounds: the exact sums over the window and over the window plus one 100 ms slot.
          const sumSince = (from: number): number => events.filter((e) => e.at >= from).reduce((s, e) => s + e.amount, 0);
          const covered = Math.min(1000, t - start);
          const low = sumSince(t - 900) / Math.max(Math.min(1000, t - start), 100);
          const high = sumSince(t - 1000) / Math.max(Math.min(900, t - start), 100);
          assert.ok(rate * 1e-3 >= low - 1e-9 && rate * 1e-3 <= high + 1e-9, `rate ${rate}/s not in [${low}, ${high}] per ms (covered ${covered})`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a window that is not a positive number', () => {
    assert.throws(() => new RateMeter(0), ValidationError);
    assert.throws(() => new RateMeter(Number.NaN), ValidationError);
  });
});
