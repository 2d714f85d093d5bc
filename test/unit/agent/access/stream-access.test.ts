import { strict as assert } from 'node:assert';
import { BroadcastAccess } from '../../../../agent/access/broadcast-access';
import type { DeviceAccess } from '../../../../agent/access/device-access';
import { ExclusiveAccess } from '../../../../agent/access/exclusive-access';
import type { DeviceMeshError } from '../../../../src/errors';
import { DEFAULT_POLICY } from '../../../../src/model/policy-defaults';
import type { SharingMode } from '../../../../src/proto/types';
import { mapping } from '../../../integration/agent/fake-control-plane';
import { settle, VirtualTime } from '../exchange/virtual-time';
import { FakeSink, Members, written } from './fake-members';

function mappingOf(sharing: SharingMode): ReturnType<typeof mapping> {
  return mapping({ id: 'x', devicePath: '/dev/ttyFAKE', policy: { ...DEFAULT_POLICY, sharing } });
}

describe('agent/access/exclusive-access and broadcast-access: the device as one stream', () => {
  it('exclusive: admits one session at a time, whatever the other asks', () => {
    const members = new Members(new VirtualTime());
    const access: DeviceAccess = new ExclusiveAccess(members.list, new FakeSink());
    assert.ok(access.admits(mappingOf('SHARING_MODE_EXCLUSIVE')));
    access.join(members.add('a'));
    for (const sharing of ['SHARING_MODE_EXCLUSIVE', 'SHARING_MODE_BROADCAST', 'SHARING_MODE_SHARED'] as const) assert.equal(access.admits(mappingOf(sharing)), false, sharing);
  });

  it('exclusive: bytes pass the gate to the device, paced by the device capacity, every byte metered', async () => {
    const time = new VirtualTime();
    const members = new Members(time);
    members.capacity.adopt(mapping({ id: 'a', devicePath: '/dev/ttyFAKE', policy: { ...DEFAULT_POLICY, deviceBytesPerSecond: '1000' } }));
    const sink = new FakeSink();
    const access = new ExclusiveAccess(members.list, sink);
    const a = members.add('a');
    access.join(a);
    let done = false;
    void written((cb) => access.write(a, Buffer.alloc(1500, 1), cb)).then(() => (done = true));
    await settle();
    assert.deepEqual(
      sink.written.map((w) => w.bytes.length),
      [1000],
    );
    time.advance(499);
    await settle();
    assert.equal(done, false, 'the rest waits for the device bucket');
    time.advance(1);
    await settle();
    assert.equal(done, true);
    assert.equal(members.capacity.meter.total, 1500, 'the device meter counts every byte written');
    assert.equal(a.bytesToDevice.value, 1500);
  });

  it('exclusive: output goes to the member, and a full member holds the device', () => {
    const members = new Members(new VirtualTime());
    const sink = new FakeSink();
    const access = new ExclusiveAccess(members.list, sink);
    const a = members.add('a');
    access.join(a);
    access.fromDevice(Buffer.from('hi'));
    a.room = false;
    access.fromDevice(Buffer.from('there'));
    assert.equal(Buffer.concat(a.received).toString(), 'hithere');
    assert.deepEqual(sink.held, ['a']);
  });

  it('a read-only member never writes: refused with the reason, counted, the device gets nothing', async () => {
    const members = new Members(new VirtualTime());
    const sink = new FakeSink();
    const access = new ExclusiveAccess(members.list, sink);
    const ro = members.add('ro', { access: 'ACCESS_READ_ONLY' });
    access.join(ro);
    await assert.rejects(written((cb) => access.write(ro, Buffer.from('x'), cb)), (err: DeviceMeshError) => err.code === 'PERMISSION_DENIED' && /mapping ro is read-only/.test(err.message));
    assert.equal(sink.written.length, 0);
    assert.equal(ro.writesRefused.value, 1);
  });

  it('broadcast: admits sessions of broadcast only; every member gets the output; only the first read-write one writes', async () => {
    const members = new Members(new VirtualTime());
    const sink = new FakeSink();
    const access = new BroadcastAccess(members.list, sink);
    const ro = members.add('ro', { access: 'ACCESS_READ_ONLY' });
    access.join(ro);
    assert.ok(access.admits(mappingOf('SHARING_MODE_BROADCAST')));
    assert.equal(access.admits(mappingOf('SHARING_MODE_EXCLUSIVE')), false);
    assert.equal(access.admits(mappingOf('SHARING_MODE_SHARED')), false);
    const writer = members.add('w');
    const other = members.add('o');
    access.join(writer);
    access.join(other);
    await written((cb) => access.write(writer, Buffer.from('cmd'), cb));
    await assert.rejects(written((cb) => access.write(other, Buffer.from('no'), cb)), (err: DeviceMeshError) => err.code === 'PERMISSION_DENIED' && /only w writes to it/.test(err.message));
    assert.deepEqual(
      sink.written.map((w) => `${w.member}:${w.bytes.toString()}`),
      ['w:cmd'],
    );
    access.fromDevice(Buffer.from('out'));
    for (const m of [ro, writer, other]) assert.equal(Buffer.concat(m.received).toString(), 'out', m.key);
  });

  it('a framed capture goes to each member whole, starting with the header', () => {
    const members = new Members(new VirtualTime());
    const sink = new FakeSink();
    const header = Buffer.from('HDR');
    sink.frames = { header };
    const access = new BroadcastAccess(members.list, sink);
    const a = members.add('a');
    access.join(a);
    access.fromDevice(header);
    access.fromDevice(Buffer.from('F1'));
    assert.deepEqual(
      a.received.map(String),
      ['HDR', 'F1'],
    );
  });

  it('a member that left writes nothing more', async () => {
    const members = new Members(new VirtualTime());
    const sink = new FakeSink();
    const access = new ExclusiveAccess(members.list, sink);
    const a = members.add('a');
    access.join(a);
    access.leave(a);
    await assert.rejects(written((cb) => access.write(a, Buffer.from('late'), cb)), /has left device/);
    assert.equal(sink.written.length, 0);
  });
});
