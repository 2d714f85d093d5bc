import * as assert from 'node:assert/strict';
import { ControlPlaneState } from '../../../control-plane/state';
import { StateStore, type StoredState } from '../../../control-plane/state-store';
import { DeviceMeshError, NotFoundError, ValidationError } from '../../../src/errors';
import type { EndpointEvent, Mapping } from '../../../src/proto/types';
import { binding, endpoint, policy, removeDir, silentLog, tempDir } from './fixtures';

/** A store whose writes can be made to fail. */
class FlakyStore extends StateStore {
  failing = false;
  override async save(state: StoredState): Promise<void> {
    if (this.failing) throw new DeviceMeshError('UNAVAILABLE', 'disk full');
    await super.save(state);
  }
}

describe('control-plane state', () => {
  let dir: string;
  let store: FlakyStore;
  let state: ControlPlaneState;
  beforeEach(async () => {
    dir = await tempDir();
    store = new FlakyStore(dir);
    state = await ControlPlaneState.open(store, silentLog);
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('applies all or nothing', async () => {
    const before = state.version();
    await assert.rejects(
      state.apply({ bindings: [binding('good'), binding('bad', { workload: '' })], policies: [policy('lab')] }),
      (err: unknown) => err instanceof ValidationError && err.field === 'binding/bad: workload',
    );
    assert.equal(state.version(), before);
    assert.deepEqual(state.bindingStatuses(), []);
    assert.deepEqual(state.policies(), []);
    assert.deepEqual((await store.load()).bindings, [], 'nothing was persisted');
  });

  it('reports created, configured and unchanged, and bumps the version only on change', async () => {
    const first = await state.apply({ bindings: [binding('a')], policies: [policy('lab')] });
    assert.deepEqual(first.results, ['policy/lab created', 'binding/a created']);
    const again = await state.apply({ bindings: [binding('a')], policies: [policy('lab')] });
    assert.deepEqual(again.results, ['policy/lab unchanged', 'binding/a unchanged']);
    assert.equal(again.version, first.version);
    const changed = await state.apply({ bindings: [binding('a', { policyRef: 'lab' })], policies: [] });
    assert.deepEqual(changed.results, ['binding/a configured']);
    assert.ok(Number(changed.version) > Number(first.version));
    assert.equal((await store.load()).version, Number(changed.version), 'persisted before answering');
  });

  it('deletes, with NOT_FOUND for unknown names and a refusal for a policy in use', async () => {
    await state.apply({ bindings: [binding('a', { policyRef: 'lab' })], policies: [policy('lab')] });
    await assert.rejects(state.delete('binding', 'nope'), NotFoundError);
    await assert.rejects(state.delete('gadget', 'a'), ValidationError);
    await assert.rejects(state.delete('policy', 'lab'), /policy\/lab: is used by binding\/a/);
    await state.delete('binding', 'a');
    await state.delete('policy', 'lab');
    assert.deepEqual(state.bindingStatuses(), []);
  });

  it('maps once the device registers and its agent connects, and tells watchers about endpoints', async () => {
    const events: EndpointEvent[] = [];
    const commits: Mapping[][] = [];
    state.watchEndpoints((e) => events.push(e));
    state.onCommit((mappings) => commits.push([...mappings]));
    await state.apply({ bindings: [binding('a')], policies: [] });
    assert.equal(state.bindingStatuses()[0]?.phase, 'BINDING_PHASE_PENDING');
    await state.registerEndpoint(endpoint('gw1', 'usb-1'));
    await state.hostConnected('gw1', '127.0.0.1:15020');
    assert.equal(state.mappings().length, 1);
    assert.equal(state.mappings({ workloadId: 'app1' }).length, 1);
    assert.equal(state.mappings({ hostId: 'gw2' }).length, 0);
    await state.hostDisconnected('gw1');
    assert.equal(state.mappings().length, 1, 'a disconnected agent keeps its mappings');
    await state.deregisterEndpoint('gw1/usb-1', true);
    assert.equal(state.mappings().length, 0);
    await state.deregisterEndpoint('gw1/usb-1', false);
    await assert.rejects(state.deregisterEndpoint('gw1/usb-1', false), NotFoundError);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.endpoint?.state}`),
      ['TYPE_UPSERTED ENDPOINT_STATE_PRESENT', 'TYPE_UPSERTED ENDPOINT_STATE_ABSENT', 'TYPE_REMOVED ENDPOINT_STATE_ABSENT'],
    );
    assert.deepEqual(commits.map((c) => c.length), [0, 0, 1, 1, 0, 0]);
  });

  it('leaves everything as it was when the write fails', async () => {
    await state.apply({ bindings: [binding('a')], policies: [] });
    const version = state.version();
    store.failing = true;
    await assert.rejects(state.apply({ bindings: [binding('b', { workload: 'app2', device: { host: 'gw1', path: '/dev/ttyUSB1', id: '' } })], policies: [] }), /disk full/);
    assert.equal(state.version(), version);
    assert.deepEqual(state.bindingStatuses().map((s) => s.binding?.name), ['a']);
    store.failing = false;
    await state.apply({ bindings: [binding('b', { workload: 'app2', device: { host: 'gw1', path: '/dev/ttyUSB1', id: '' } })], policies: [] });
    assert.equal(Number(state.version()), Number(version) + 1);
  });
});
