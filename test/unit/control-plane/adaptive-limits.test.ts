import * as assert from 'node:assert/strict';
import { ControlPlaneState, type ChangeKind } from '../../../control-plane/state';
import { StateStore } from '../../../control-plane/state-store';
import type { AdaptiveLimit, Mapping } from '../../../src/proto/types';
import { binding, endpoint, policy, removeDir, silentLog, tempDir } from './fixtures';

const metered = (device: string): ReturnType<typeof policy> => policy('', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: device });

function limit(bytesPerSecond: number, reason = 'device gw1/usb-1 saturated'): AdaptiveLimit {
  return { bytesPerSecond: String(bytesPerSecond), reason, changedAtMs: '1700000000000' };
}

describe('control-plane state: adaptive limits', () => {
  let dir: string;
  let state: ControlPlaneState;
  const kinds: ReadonlySet<ChangeKind>[] = [];
  const mapping = (name: string): Mapping => state.mappings().find((m) => m.binding === name) as Mapping;

  beforeEach(async () => {
    dir = await tempDir();
    state = await ControlPlaneState.open(new StateStore(dir), silentLog);
    state.onCommit((_m, _v, k) => kinds.push(k));
    await state.registerEndpoint(endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' }));
    await state.hostConnected('gw1', '127.0.0.1:15020');
    await state.apply({ bindings: [binding('a', { policy: metered('10000') }), binding('b', { workload: 'app2', policy: metered('10000') })], policies: [] });
  });
  afterEach(async () => {
    kinds.length = 0;
    await removeDir(dir);
  });

  it('writes a limit into its mapping as a new version, told to listeners as a bandwidth change', async () => {
    const before = mapping('a');
    const { version, applied } = await state.setAdaptiveLimits(new Map([[before.id, limit(4000)]]));
    assert.deepEqual(applied, [before.id]);
    assert.deepEqual(mapping('a').adaptiveLimit, limit(4000));
    assert.equal(mapping('a').version, version);
    assert.ok(Number(version) > Number(before.version));
    assert.equal(mapping('b').adaptiveLimit, null, 'the other mapping is untouched');
    assert.deepEqual([...(kinds[kinds.length - 1] ?? [])], ['bandwidth']);
  });

  it('keeps the limit when the mapping is regenerated, and drops it once the device has no capacity', async () => {
    const id = mapping('a').id;
    await state.setAdaptiveLimits(new Map([[id, limit(4000)]]));
    const kept = mapping('a');
    await state.apply({ bindings: [binding('c', { workload: 'app3', device: { host: 'gw1', path: '/dev/ttyUSB9', id: '' } })], policies: [] });
    await state.hostConnected('gw1', '127.0.0.1:15020');
    assert.equal(mapping('a'), kept, 'the very same mapping: same limit, same version');
    await state.apply({ bindings: [binding('a', { policy: metered('10000'), settings: { note: 'x' } })], policies: [] });
    assert.deepEqual(mapping('a').adaptiveLimit, limit(4000), 'a changed binding keeps its limit');
    assert.ok(Number(mapping('a').version) > Number(kept.version));
    await state.apply({ bindings: [binding('a', { policy: metered('20000') }), binding('b', { workload: 'app2', policy: metered('20000') })], policies: [] });
    assert.deepEqual(mapping('a').adaptiveLimit, limit(4000), 'until the controller divides the new capacity');
    const unmetered = policy('', { sharing: 'SHARING_MODE_SHARED' });
    await state.apply({ bindings: [binding('a', { policy: unmetered }), binding('b', { workload: 'app2', policy: unmetered })], policies: [] });
    assert.equal(mapping('a').adaptiveLimit, null);
  });

  it('survives a restart: the limit is stored with its mapping', async () => {
    await state.setAdaptiveLimits(new Map([[mapping('a').id, limit(4000)], [mapping('b').id, limit(6000)]]));
    const versions = state.mappings().map((m) => m.version);
    const reopened = await ControlPlaneState.open(new StateStore(dir), silentLog);
    assert.deepEqual(reopened.mappings().map((m) => m.adaptiveLimit), [limit(4000), limit(6000)]);
    assert.deepEqual(reopened.mappings().map((m) => m.version), versions, 'same content, same version');
  });

  it('ignores limits for mappings it does not have, without a new version', async () => {
    const before = state.version();
    const id = mapping('a').id;
    assert.deepEqual(await state.setAdaptiveLimits(new Map([['gone-12345678', limit(1)]])), { version: before, applied: [] });
    const both = await state.setAdaptiveLimits(new Map([['gone-12345678', limit(1)], [id, limit(2)]]));
    assert.deepEqual(both.applied, [id]);
    assert.deepEqual(mapping('a').adaptiveLimit, limit(2));
  });
});
