import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { BindingLimits } from '../../../../agent/limits/binding-limits';
import { LimitGate, MAX_PIECE } from '../../../../agent/limits/limit-gate';
import { RateMeter } from '../../../../agent/limits/rate-meter';
import { TokenBucket } from '../../../../src/limits/token-bucket';
import { DEFAULT_POLICY } from '../../../../src/model/policy-defaults';
import type { Policy } from '../../../../src/proto/types';
import { Stats } from '../../../../src/telemetry/stats';
import { mapping } from '../../../integration/agent/fake-control-plane';
import { settle, VirtualTime } from '../exchange/virtual-time';

interface Rig {
  time: VirtualTime;
  gate: LimitGate;
  limits: BindingLimits;
  device: TokenBucket;
  deviceMeter: RateMeter;
  /** Pieces as the device got them, with the virtual time of each. */
  pieces: Array<{ at: number; bytes: number }>;
  /** Writes `chunk` through the gate to a device that takes every piece at once. */
  write(chunk: Buffer): Promise<void>;
}

function rig(policy: Partial<Policy>, deviceBytesPerSecond: number): Rig {
  const time = new VirtualTime();
  const limits = new BindingLimits(mapping({ id: 'm1', devicePath: '/dev/ttyX', policy: { ...DEFAULT_POLICY, ...policy } }), new Stats(), time.now);
  const device = new TokenBucket(deviceBytesPerSecond, 0, time.now);
  const deviceMeter = new RateMeter(1000, time.now);
  const gate = new LimitGate(limits, device, deviceMeter, time);
  const pieces: Rig['pieces'] = [];
  return {
    time,
    gate,
    limits,
    device,
    deviceMeter,
    pieces,
    write: (chunk) =>
      new Promise((resolve, reject) =>
        gate.write(
          chunk,
          (piece, cb) => {
            pieces.push({ at: time.now(), bytes: piece.length });
            cb();
          },
          (err) => (err ? reject(err) : resolve()),
        ),
      ),
  };
}

/** Advances virtual time in steps of 10 ms, letting promise callbacks run after each. */
async function run(time: VirtualTime, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10) {
    time.advance(10);
    await settle();
  }
}

describe('agent/limits/limit-gate: one gate for bytes and commands', () => {
  it('without a limit a chunk is one write, metered for the binding and the device', async () => {
    const r = rig({}, 0);
    assert.ok(r.gate.unlimited);
    await r.write(Buffer.alloc(100_000));
    assert.deepEqual(r.pieces, [{ at: 0, bytes: 100_000 }]);
    assert.equal(r.limits.meter.total, 100_000);
    assert.equal(r.deviceMeter.total, 100_000, 'the device meter counts writes');
  });

  it('slow mode: the device bucket paces a stream in pieces of at most its burst, nothing lost', async () => {
    const r = rig({}, 1000);
    const done = r.write(Buffer.alloc(2500));
    await settle();
    assert.deepEqual(r.pieces, [{ at: 0, bytes: 1000 }], 'the burst at once');
    await run(r.time, 1600);
    await done;
    assert.deepEqual(
      r.pieces.map((p) => p.bytes),
      [1000, 1000, 500],
    );
    assert.ok((r.pieces[1]?.at ?? 0) >= 1000 && (r.pieces[2]?.at ?? 0) >= 1500, `paced: ${r.pieces.map((p) => p.at).join(', ')} ms`);
    assert.equal(r.deviceMeter.total, 2500);
    assert.ok(r.limits.throttled, 'held back: throttled');
  });

  it('slow mode: a binding limit and the device capacity both hold, the slower sets the pace', async () => {
    const r = rig({ bytesPerSecond: '100', burstBytes: '100' }, 10_000);
    const done = r.write(Buffer.alloc(300));
    await run(r.time, 2100);
    await done;
    assert.deepEqual(
      r.pieces.map((p) => [Math.round(p.at / 100), p.bytes]),
      [
        [0, 100],
        [10, 100],
        [20, 100],
      ],
    );
  });

  it('drop mode: what the buckets allow now goes, the rest is dropped and counted', async () => {
    const r = rig({ bytesPerSecond: '500', overLimit: 'OVER_LIMIT_DROP' }, 300);
    await r.write(Buffer.alloc(1000));
    assert.deepEqual(r.pieces, [{ at: 0, bytes: 300 }]);
    assert.equal(r.limits.droppedBytes.value, 700);
    assert.equal(r.limits.bytes.available(), 200, 'the binding paid only for the bytes the device took');
    await r.write(Buffer.alloc(10));
    assert.equal(r.pieces.length, 1, 'an empty bucket writes nothing');
    assert.equal(r.limits.droppedBytes.value, 710);
    assert.equal(r.deviceMeter.total, 300, 'dropped bytes never reach the device meter');
  });

  it('a device error ends the paced write with it', async () => {
    const r = rig({}, 100);
    const failed = new Promise<Error | null | undefined>((resolve) => r.gate.write(Buffer.alloc(300), (_piece, cb) => cb(new Error('EIO')), resolve));
    await run(r.time, 50);
    assert.equal((await failed)?.message, 'EIO');
  });

  it('a command pays one command token and every byte, waiting in slow mode', async () => {
    const r = rig({ commandsPerSecond: 10, burstCommands: 1 }, 1000);
    assert.equal(await r.gate.admit(600), true);
    assert.equal(r.limits.commands.available(), 0);
    assert.equal(r.device.available(), 400, 'the device bucket is charged for every byte of the command');
    let second = false;
    void r.gate.admit(600).then((ok) => (second = ok));
    await run(r.time, 50);
    assert.equal(second, false, 'waits for a command token and 200 more bytes');
    await run(r.time, 200);
    assert.equal(second, true);
  });

  it('a command larger than the byte burst passes once every byte is paid', async () => {
    const r = rig({}, 1000);
    let admitted = false;
    void r.gate.admit(2500).then((ok) => (admitted = ok));
    await run(r.time, 1400);
    assert.equal(admitted, false, '2500 bytes at 1000 B/s with 1000 in the bucket: not before 1.5 s');
    await run(r.time, 200);
    assert.equal(admitted, true);
  });

  it('drop mode: a command goes whole or is dropped and counted', async () => {
    const r = rig({ overLimit: 'OVER_LIMIT_DROP', commandsPerSecond: 2 }, 250);
    assert.equal(await r.gate.admit(100), true);
    assert.equal(await r.gate.admit(100), true);
    assert.equal(await r.gate.admit(100), false, 'no command token left');
    assert.equal(r.limits.droppedCommands.value, 1);
    assert.equal(r.limits.droppedBytes.value, 100);
    assert.equal(r.device.available(), 50, 'a dropped command charges nothing');
  });

  it('property: slow mode writes every byte in order, and no piece exceeds the bursts or MAX_PIECE', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 200, max: 8000 }), fc.integer({ min: 0, max: 5000 }), async (size, rate, burst) => {
        const r = rig({ bytesPerSecond: String(rate), burstBytes: String(burst) }, 0);
        const chunk = Buffer.alloc(size, 7);
        let done = false;
        void r.write(chunk).then(() => (done = true));
        for (let i = 0; i < 200 && !done; i++) {
          r.time.advance(1000);
          await settle();
        }
        assert.ok(done);
        assert.equal(
          r.pieces.reduce((n, p) => n + p.bytes, 0),
          size,
        );
        const cap = Math.min(MAX_PIECE, r.limits.bytes.burst);
        assert.ok(r.pieces.every((p) => p.bytes <= cap));
      }),
      { numRuns: 60 },
    );
  });
});
