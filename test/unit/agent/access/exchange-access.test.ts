import { strict as assert } from 'node:assert';
import { ExchangeAccess } from '../../../../agent/access/exchange-access';
import type { DeviceMeshError } from '../../../../src/errors';
import { DEFAULT_POLICY } from '../../../../src/model/policy-defaults';
import type { Policy, SharingMode } from '../../../../src/proto/types';
import { mapping } from '../../../integration/agent/fake-control-plane';
import { settle, VirtualTime } from '../exchange/virtual-time';
import { testLogger } from '../helpers';
import { FakeSink, Members, written } from './fake-members';

/** A command of `size` bytes, its last the request terminator. */
function commandOf(size: number, fill: string): Buffer {
  return Buffer.from(`${fill.repeat(size - 1)}\n`, 'latin1');
}

function rig(sharing: SharingMode, deviceBytesPerSecond: number): { time: VirtualTime; members: Members; sink: FakeSink; access: ExchangeAccess; at: number[] } {
  const time = new VirtualTime();
  const members = new Members(time);
  const policy: Policy = { ...DEFAULT_POLICY, sharing, queueDepth: 64, perConsumerQueue: 64, deviceBytesPerSecond: String(deviceBytesPerSecond) };
  const m = mapping({ id: 'first', devicePath: '/dev/ttyFAKE', policy });
  members.capacity.adopt(m);
  const sink = new FakeSink();
  const access = new ExchangeAccess({ sharing, policy, mapping: m, members: members.list, device: sink, capacity: members.capacity, stats: members.stats, log: testLogger(), now: time.now, timers: time });
  // The device answers every request at once with what it was asked, upper-cased.
  const at: number[] = [];
  sink.onRequest = (request) => {
    at.push(time.now());
    time.setTimeout(() => access.fromDevice(Buffer.from(request.toString('latin1').toUpperCase(), 'latin1')), 0);
  };
  return { time, members, sink, access, at };
}

async function run(time: VirtualTime, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10) {
    await settle();
    time.advance(10);
    await settle();
  }
}

describe('agent/access/exchange-access: shared and time-slice through the exchange', () => {
  for (const sharing of ['SHARING_MODE_SHARED', 'SHARING_MODE_TIME_SLICE'] as const) {
    it(`${sharing}: the device bucket is charged for every byte and the device meter counts writes`, async () => {
      const r = rig(sharing, 1000);
      const a = r.members.add('a', { sharing });
      const b = r.members.add('b', { sharing });
      r.access.join(a);
      r.access.join(b);
      const done = Promise.all([
        written((cb) => r.access.write(a, Buffer.concat([commandOf(300, 'a'), commandOf(300, 'a')]), cb)),
        written((cb) => r.access.write(b, Buffer.concat([commandOf(300, 'b'), commandOf(300, 'b')]), cb)),
      ]);
      await settle();
      assert.ok(r.members.capacity.bucket.available() < 1000, 'commands took device tokens at once');
      await run(r.time, 500);
      await done;
      await run(r.time, 20);
      assert.equal(
        r.sink.requests.reduce((n, q) => n + q.length, 0),
        1200,
      );
      // 1200 bytes through a bucket of 1000 at 1000 B/s: the device paid for them all, so the last waited.
      assert.ok(r.at.length === 4 && (r.at[3] as number) >= 200, `requests at ${r.at.join(', ')} ms`);
      assert.equal(r.members.capacity.meter.total, 1200, 'the device meter counts every byte written');
      r.access.close();
    });
  }

  it('each answer goes only to its sender; a full sender holds the device', async () => {
    const r = rig('SHARING_MODE_SHARED', 0);
    const a = r.members.add('a', { sharing: 'SHARING_MODE_SHARED' });
    const b = r.members.add('b', { sharing: 'SHARING_MODE_SHARED' });
    r.access.join(a);
    r.access.join(b);
    a.room = false;
    await written((cb) => r.access.write(a, commandOf(3, 'a'), cb));
    await written((cb) => r.access.write(b, commandOf(3, 'b'), cb));
    await run(r.time, 30);
    assert.deepEqual(a.received.map(String), ['AA\n']);
    assert.deepEqual(b.received.map(String), ['BB\n']);
    assert.deepEqual(r.sink.held, ['a']);
    r.access.close();
  });

  it('admits sessions of its own mode only, and refuses a read-only member the line codec cannot check', async () => {
    const r = rig('SHARING_MODE_TIME_SLICE', 0);
    const ro = r.members.add('ro', { sharing: 'SHARING_MODE_TIME_SLICE', access: 'ACCESS_READ_ONLY' });
    r.access.join(ro);
    const other = (sharing: SharingMode): ReturnType<typeof mapping> => mapping({ id: 'y', devicePath: '/dev/ttyFAKE', policy: { ...DEFAULT_POLICY, sharing } });
    assert.ok(r.access.admits(other('SHARING_MODE_TIME_SLICE')));
    assert.equal(r.access.admits(other('SHARING_MODE_SHARED')), false);
    assert.equal(r.access.admits(other('SHARING_MODE_EXCLUSIVE')), false);
    await assert.rejects(written((cb) => r.access.write(ro, commandOf(3, 'r'), cb)), (err: DeviceMeshError) => err.code === 'PERMISSION_DENIED');
    assert.equal(r.sink.requests.length, 0);
    assert.equal(ro.writesRefused.value, 1);
    r.access.close();
  });
});
