import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { TokenBucket } from '../../../../src/limits/token-bucket';
import { OutputPacer } from '../../../../agent/limits/output-pacer';
import { VirtualTime } from '../exchange/virtual-time';

interface Rig {
  time: VirtualTime;
  pacer: OutputPacer;
  bucket: TokenBucket;
  /** What went on, with the virtual time it went. */
  released: Array<{ at: number; chunk: Buffer }>;
  throttled: number;
  drained: number;
  drop: boolean;
}

function rig(rate: number, burst: number, highWaterMark = 64 * 1024): Rig {
  const time = new VirtualTime();
  const bucket = new TokenBucket(rate, burst, time.now);
  const r: Rig = { time, bucket, released: [], throttled: 0, drained: 0, drop: false, pacer: undefined as unknown as OutputPacer };
  r.pacer = new OutputPacer({
    bucket,
    drop: () => r.drop,
    release: (chunk) => void r.released.push({ at: time.now(), chunk: Buffer.from(chunk) }),
    throttled: () => void r.throttled++,
    drained: () => void r.drained++,
    highWaterMark,
    timers: time,
  });
  return r;
}

const bytesBy = (r: Rig, t: number): number => r.released.filter((x) => x.at <= t).reduce((n, x) => n + x.chunk.length, 0);
const all = (r: Rig): Buffer => Buffer.concat(r.released.map((x) => x.chunk));

describe('agent/output-pacer: device output at the binding rate (slow mode)', () => {
  it('passes output straight through without a limit, and in drop mode', () => {
    const r = rig(0, 0);
    assert.equal(r.pacer.offer(Buffer.alloc(100_000, 1)), true);
    assert.equal(bytesBy(r, 0), 100_000);
    const d = rig(1000, 1000);
    d.drop = true;
    assert.equal(d.pacer.offer(Buffer.alloc(5000, 2)), true);
    assert.equal(bytesBy(d, 0), 5000);
    assert.equal(d.time.armed, 0, 'no timer');
  });

  it('releases a burst at once and the rest at the rate, in order, with one timer at a time', () => {
    const r = rig(1000, 500);
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    assert.equal(r.pacer.offer(data.subarray(0, 2000)), true);
    assert.equal(r.pacer.offer(data.subarray(2000)), true);
    assert.equal(bytesBy(r, 0), 500, 'the burst');
    assert.equal(r.throttled, 1);
    assert.equal(r.pacer.waiting, 2500);
    assert.ok(r.time.armed <= 1);
    r.time.advance(1000);
    assert.equal(bytesBy(r, 1000), 1500, 'a second at 1000 B/s');
    r.time.advance(1500);
    assert.ok(all(r).equals(data), 'everything, in order');
    assert.equal(r.pacer.waiting, 0);
    assert.equal(r.time.armed, 0, 'no timer once nothing waits');
  });

  it('asks for the device to pause at the high-water mark and says when it drained', () => {
    const r = rig(1000, 100, 1000);
    assert.equal(r.pacer.offer(Buffer.alloc(600)), true);
    assert.equal(r.pacer.offer(Buffer.alloc(600)), false, '1100 held: pause');
    assert.equal(r.pacer.saturated, true);
    r.time.advance(50);
    assert.equal(r.drained, 0);
    r.time.advance(200);
    assert.equal(r.drained, 1, 'below the mark again');
    assert.equal(r.pacer.saturated, false);
    r.time.advance(2000);
    assert.equal(bytesBy(r, Infinity), 1200, 'nothing lost');
  });

  it('a retune to unlimited releases what waits on the next tick, still in order', () => {
    const r = rig(100, 100);
    r.pacer.offer(Buffer.from('a'.repeat(300)));
    r.bucket.configure(0, 0);
    r.pacer.offer(Buffer.from('b'.repeat(10)));
    assert.equal(all(r).toString(), 'a'.repeat(100), 'b waits behind a');
    r.time.advance(1000);
    assert.equal(all(r).toString(), `${'a'.repeat(300)}${'b'.repeat(10)}`);
  });

  it('drops what waits when the session ends, and arms nothing more', () => {
    const r = rig(100, 100);
    r.pacer.offer(Buffer.alloc(1000));
    r.pacer.close();
    assert.equal(r.time.armed, 0);
    assert.equal(r.pacer.waiting, 0);
    r.time.advance(10_000);
    assert.equal(bytesBy(r, Infinity), 100);
  });

  it('property: output is released whole and in order, never faster than burst + rate × time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.uint8Array({ minLength: 1, maxLength: 3000 })), { maxLength: 20 }),
        (rate, burst, chunks) => {
          const r = rig(rate, burst);
          const size = burst === 0 ? rate : burst;
          const sent: Buffer[] = [];
          for (const [gap, bytes] of chunks) {
            r.time.advance(gap);
            sent.push(Buffer.from(bytes));
            r.pacer.offer(Buffer.from(bytes));
          }
          const total = sent.reduce((n, b) => n + b.length, 0);
          r.time.advance(Math.ceil((total / rate) * 1000) + 1000);
          assert.ok(all(r).equals(Buffer.concat(sent)));
          for (const { at } of r.released) assert.ok(bytesBy(r, at) <= size + (rate * at) / 1000 + 1, `${bytesBy(r, at)} bytes by ${at} ms`);
        },
      ),
      { numRuns: 100 },
    );
  });
});
