import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { TokenBucket } from '../../../src/limits/token-bucket';
import { ValidationError } from '../../../src/errors';

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('bandwidth: token bucket', () => {
  it('starts full, gives at most the burst at once, then refills at the rate', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(100, 50, clock.now);
    assert.equal(bucket.take(80), 50);
    assert.equal(bucket.take(1), 0);
    assert.equal(bucket.delayFor(10), 100);
    clock.advance(99);
    assert.equal(bucket.take(10), 9);
    clock.advance(1000);
    assert.equal(bucket.take(1000), 50, 'never more than the burst, however long it waited');
  });

  it('keeps the long-run rate at the configured rate whatever the chunk sizes and timing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.array(fc.record({ want: fc.integer({ min: 1, max: 20_000 }), waitMs: fc.integer({ min: 0, max: 50 }) }), { minLength: 50, maxLength: 300 }),
        (rate, burst, steps) => {
          const clock = manualClock();
          const bucket = new TokenBucket(rate, burst, clock.now);
          let taken = 0;
          let elapsed = 0;
          for (const { want, waitMs } of steps) {
            taken += bucket.take(want);
            clock.advance(waitMs);
            elapsed += waitMs;
          }
          // What a bucket can ever give: its initial burst plus the rate over the time that passed.
          assert.ok(taken <= bucket.burst + (rate * elapsed) / 1000 + 1e-6, `${taken} > ${bucket.burst} + ${rate}/s × ${elapsed} ms`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives the full rate to a sender that keeps asking, over a long run', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(10_000, 1000, clock.now);
    bucket.take(1000);
    let taken = 0;
    for (let ms = 0; ms < 60_000; ms += 7) {
      clock.advance(7);
      taken += bucket.take(4096);
    }
    const perSecond = taken / 60.006;
    assert.ok(Math.abs(perSecond - 10_000) < 20, `${perSecond} bytes/s`);
  });

  it('waits exactly as long as the missing tokens take, capped at the burst', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(1000, 100, clock.now);
    assert.equal(bucket.delayFor(100), 0);
    bucket.take(100);
    assert.equal(bucket.delayFor(50), 50);
    assert.equal(bucket.delayFor(500), 100, 'more than the burst waits for a full bucket');
    clock.advance(50);
    assert.equal(bucket.delayFor(50), 0);
    assert.equal(bucket.take(50), 50);
  });

  it('tells what could be taken without taking it', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(1000, 100, clock.now);
    assert.equal(bucket.available(), 100);
    assert.equal(bucket.available(), 100, 'looking takes nothing');
    bucket.take(70);
    clock.advance(5);
    assert.equal(bucket.available(), 35);
    assert.equal(new TokenBucket(0, 0, clock.now).available(), Infinity);
  });

  it('is unlimited at rate 0', () => {
    const bucket = new TokenBucket(0, 0, manualClock().now);
    assert.equal(bucket.take(1e9), 1e9);
    assert.equal(bucket.delayFor(1e9), 0);
    assert.equal(bucket.burst, 0);
  });

  it('takes a burst of 0 as one second of the rate, and at least one token', () => {
    assert.equal(new TokenBucket(300, 0, manualClock().now).burst, 300);
    const slow = new TokenBucket(0.5, 0, manualClock().now);
    assert.equal(slow.burst, 1);
    assert.equal(slow.take(5), 1);
  });

  it('keeps earned tokens across a reconfiguration, capped at the new burst', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(1000, 1000, clock.now);
    bucket.take(1000);
    clock.advance(300);
    bucket.configure(100, 200);
    assert.equal(bucket.ratePerSecond, 100);
    assert.equal(bucket.take(1000), 200, '300 earned, capped at the new burst of 200');
    clock.advance(100);
    assert.equal(bucket.take(1000), 10, 'earning at the new rate');
    bucket.configure(0, 0);
    assert.equal(bucket.take(5000), 5000);
    bucket.configure(10, 20);
    assert.equal(bucket.take(100), 20, 'from unlimited it starts with a full bucket');
  });

  it('earns nothing when the clock steps back, and loses nothing either', () => {
    const clock = manualClock();
    const bucket = new TokenBucket(1000, 100, clock.now);
    bucket.take(60);
    clock.advance(-500);
    assert.equal(bucket.take(100), 40);
    clock.advance(510);
    assert.equal(bucket.take(100), 10);
  });

  it('refuses a negative or non-finite rate or burst', () => {
    assert.throws(() => new TokenBucket(-1, 0), ValidationError);
    assert.throws(() => new TokenBucket(Number.NaN, 0), ValidationError);
    assert.throws(() => new TokenBucket(10, Infinity), ValidationError);
    assert.throws(() => new TokenBucket(10, 10).configure(Infinity, 1), ValidationError);
  });
});
