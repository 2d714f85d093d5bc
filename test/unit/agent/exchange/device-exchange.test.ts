import { strict as assert } from 'node:assert';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { BindingLimits } from '../../../../agent/limits/binding-limits';
import { DeviceExchange, type ExchangeConsumer } from '../../../../agent/exchange/device-exchange';
import { RateMeter } from '../../../../agent/limits/rate-meter';
import { TokenBucket } from '../../../../src/limits/token-bucket';
import type { DeviceMeshError } from '../../../../src/errors';
import { DEFAULT_POLICY } from '../../../../src/model/policy-defaults';
import type { OverLimit, Policy, SharingMode } from '../../../../src/proto/types';
import { Stats } from '../../../../src/telemetry/stats';
import { mapping } from '../../../integration/agent/fake-control-plane';
import { VirtualTime } from './virtual-time';
import { testLogger } from '../helpers';

/** A command of `size` bytes, its last the request terminator. */
function commandOf(size: number, fill = 'x'): Buffer {
  return Buffer.from(`${fill.repeat(size - 1)}\n`, 'latin1');
}

interface Rig {
  time: VirtualTime;
  exchange: DeviceExchange;
  device: TokenBucket;
  meter: RateMeter;
  /** Requests as the device got them, with the virtual time of each. */
  writes: Array<{ at: number; bytes: number }>;
  consumer(key: string, policy?: Partial<Policy>): ExchangeConsumer & { answers: Buffer[]; refusals: DeviceMeshError[] };
  /** A consumer's write completed (all its commands queued). */
  write(consumer: string, chunk: Buffer): Promise<void>;
  stats: Stats;
}

/** An exchange in virtual time over a device that answers every request at once with "ok\n". */
function rig(sharing: SharingMode, deviceBytesPerSecond: number, overLimit: OverLimit = 'OVER_LIMIT_SLOW'): Rig {
  const time = new VirtualTime();
  const stats = new Stats();
  const device = new TokenBucket(deviceBytesPerSecond, deviceBytesPerSecond, time.now);
  const meter = new RateMeter(1000, time.now);
  const writes: Rig['writes'] = [];
  const policy: Policy = { ...DEFAULT_POLICY, sharing, queueDepth: 64, perConsumerQueue: 64, overLimit, deviceBytesPerSecond: String(deviceBytesPerSecond) };
  const exchange: DeviceExchange = new DeviceExchange({
    device: '/dev/ttyX',
    policy,
    serial: null,
    write: (request) => {
      writes.push({ at: time.now(), bytes: request.length });
      time.setTimeout(() => exchange.onDeviceData(Buffer.from('ok\n')), 0);
    },
    deviceBucket: device,
    deviceMeter: meter,
    stats,
    log: testLogger(),
    now: time.now,
    timers: time,
  });
  return {
    time,
    exchange,
    device,
    meter,
    writes,
    stats,
    consumer(key, own = {}) {
      const m = mapping({ id: key, devicePath: '/dev/ttyX', policy: { ...policy, ...own } });
      const answers: Buffer[] = [];
      const refusals: DeviceMeshError[] = [];
      const c = {
        key,
        workloadId: key,
        priority: 0,
        weight: 1,
        limits: new BindingLimits(m, stats, time.now),
        access: { readOnly: false, units: [] },
        traceContext: ROOT_CONTEXT,
        spanAttributes: {},
        receive: (chunk: Buffer): void => void answers.push(chunk),
        refuse: (err: DeviceMeshError): void => void refusals.push(err),
        answers,
        refusals,
      };
      exchange.add(c);
      return c;
    },
    write(consumer, chunk) {
      return new Promise((resolve, reject) => exchange.write(consumer, chunk, (err) => (err ? reject(err) : resolve())));
    },
  };
}

/** Lets every pending promise callback run. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Advances virtual time in steps, letting promise callbacks run before and after each. */
async function run(time: VirtualTime, ms: number, step = 10): Promise<void> {
  await flush();
  for (let t = 0; t < ms; t += step) {
    time.advance(step);
    await flush();
  }
}

describe('agent/device-exchange: commands against the device capacity', () => {
  for (const sharing of ['SHARING_MODE_SHARED', 'SHARING_MODE_TIME_SLICE'] as const) {
    it(`${sharing}: charges the device bucket for every byte of every command and records them in the device meter`, async () => {
      const r = rig(sharing, 1000);
      const a = r.consumer('a');
      const b = r.consumer('b');
      // 12 commands of 100 bytes from two consumers: a burst of 1000 lets 10 go at once, the rest at 1000 B/s.
      const done = Promise.all([r.write('a', Buffer.concat(Array.from({ length: 6 }, () => commandOf(100, 'a')))), r.write('b', Buffer.concat(Array.from({ length: 6 }, () => commandOf(100, 'b'))))]);
      await flush();
      assert.equal(r.device.available(), 0, 'a burst worth of commands took the whole device bucket at once');
      await run(r.time, 10);
      assert.equal(r.writes.length, 10, 'and went to the device');
      await run(r.time, 300);
      await done;
      assert.equal(r.writes.length, 12);
      const late = r.writes.slice(10).map((w) => w.at);
      assert.ok((late[0] as number) >= 100 && (late[1] as number) >= 200, `the 11th and 12th waited for tokens: at ${late.join(', ')} ms`);
      assert.equal(r.meter.total, 1200, 'the device meter counts every request byte');
      assert.equal(a.answers.length + b.answers.length, 12);
      assert.ok(a.limits.throttled || b.limits.throttled, 'a held-back binding shows as throttled');
      r.exchange.close();
    });
  }

  it('passes a command larger than the device burst once it has paid for every byte', async () => {
    const r = rig('SHARING_MODE_SHARED', 1000);
    r.consumer('a');
    const done = r.write('a', commandOf(2500));
    await run(r.time, 1400);
    assert.equal(r.writes.length, 0, 'not before 1.5 s: 2500 bytes at 1000 B/s with 1000 in the bucket');
    await run(r.time, 200);
    await done;
    assert.equal(r.writes.length, 1);
    assert.ok((r.writes[0]?.at ?? 0) >= 1500, `written at ${r.writes[0]?.at} ms`);
    assert.equal(r.meter.total, 2500);
    r.exchange.close();
  });

  it('drop mode: a command the device bucket cannot pay for now is dropped and counted, not queued', async () => {
    const r = rig('SHARING_MODE_SHARED', 300, 'OVER_LIMIT_DROP');
    const a = r.consumer('a');
    await r.write('a', Buffer.concat([commandOf(100), commandOf(100), commandOf(100), commandOf(100)]));
    await run(r.time, 10);
    assert.equal(r.writes.length, 3);
    assert.equal(a.limits.droppedCommands.value, 1);
    assert.equal(a.limits.droppedBytes.value, 100);
    assert.equal(r.meter.total, 300, 'a dropped command never reaches the device meter');
    r.exchange.close();
  });

  it('an unlimited device and binding charge nothing and wait for nothing', async () => {
    const r = rig('SHARING_MODE_SHARED', 0);
    r.consumer('a');
    await r.write('a', Buffer.concat(Array.from({ length: 20 }, () => commandOf(500))));
    await run(r.time, 10);
    assert.equal(r.writes.length, 20);
    assert.equal(r.meter.total, 10_000);
    r.exchange.close();
  });

  it('a binding limit and the device capacity both hold: the slower one sets the pace', async () => {
    const r = rig('SHARING_MODE_SHARED', 10_000);
    r.consumer('a', { commandsPerSecond: 10, burstCommands: 1 });
    const done = r.write('a', Buffer.concat(Array.from({ length: 4 }, () => commandOf(10))));
    await run(r.time, 350);
    await done;
    assert.deepEqual(
      r.writes.map((w) => Math.floor(w.at / 100)),
      [0, 1, 2, 3],
      'one command per 100 ms although the device could take them all',
    );
    assert.equal(r.meter.total, 40);
    r.exchange.close();
  });
});
