import * as assert from 'node:assert/strict';
import { ControlPlaneState } from '../../../control-plane/state';
import { StateStore, type StateWrite, type WriteReport } from '../../../control-plane/state-store';
import { DeviceMeshError, NotFoundError, ValidationError } from '../../../src/errors';
import type { Binding, EndpointEvent, Mapping } from '../../../src/proto/types';
import { binding, endpoint, policy, removeDir, silentLog, tempDir } from './fixtures';

/** A store whose writes can be made to fail, or to wait, and that counts them. */
class FlakyStore extends StateStore {
  failing = false;
  saves = 0;
  gate: Promise<void> | undefined;
  override async save(write: StateWrite): Promise<WriteReport> {
    this.saves += 1;
    await this.gate;
    if (this.failing) throw new DeviceMeshError('UNAVAILABLE', 'disk full');
    return super.save(write);
  }
}

/** A binding of its own workload and device, so that any number of them can coexist. */
function lone(name: string): Binding {
  return binding(name, { workload: `w-${name}`, device: { host: 'gw1', path: `/dev/${name}`, id: '' } });
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
    assert.deepEqual((await store.load()).state.bindings, [], 'nothing was persisted');
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
    assert.equal((await store.load()).state.version, Number(changed.version), 'persisted before answering');
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
    const connectedAt = await state.hostConnected('gw1', '127.0.0.1:15020');
    assert.equal(state.mappings().length, 1);
    assert.equal(state.mappings({ workloadId: 'app1' }).length, 1);
    assert.equal(state.mappings({ hostId: 'gw2' }).length, 0);
    await state.hostDisconnected('gw1', connectedAt);
    assert.equal(state.mappings().length, 0, 'a disconnected agent\'s address is withdrawn');
    assert.equal(state.bindingStatuses()[0]?.phase, 'BINDING_PHASE_PENDING');
    await state.hostConnected('gw1', '127.0.0.1:15020');
    assert.equal(state.mappings().length, 1, 'mapped again once an agent of the host is back');
    // A disconnection of an older connection (another replica noticing late) withdraws nothing.
    await state.hostDisconnected('gw1', connectedAt);
    assert.equal(state.mappings().length, 1);
    assert.equal(state.hosts().find((h) => h.id === 'gw1')?.socketPlaneAddress, '127.0.0.1:15020');
    await state.deregisterEndpoint('gw1/usb-1', true);
    assert.equal(state.mappings().length, 0);
    await state.deregisterEndpoint('gw1/usb-1', false);
    await assert.rejects(state.deregisterEndpoint('gw1/usb-1', false), NotFoundError);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.endpoint?.state}`),
      ['TYPE_UPSERTED ENDPOINT_STATE_PRESENT', 'TYPE_UPSERTED ENDPOINT_STATE_ABSENT', 'TYPE_REMOVED ENDPOINT_STATE_ABSENT'],
    );
    assert.deepEqual(commits.map((c) => c.length), [0, 0, 1, 0, 1, 0, 0]);
  });

  it('tells commit listeners what kind of change each commit was, and counts durable writes', async () => {
    const kinds: string[][] = [];
    state.onCommit((_mappings, _version, k) => kinds.push([...k].sort()));
    await state.apply({ bindings: [binding('a')], policies: [policy('lab')] });
    await state.apply({ bindings: [binding('a', { policyRef: 'lab' })], policies: [] });
    await state.registerEndpoint(endpoint('gw1', 'usb-1'));
    await state.hostConnected('gw1', '127.0.0.1:15020');
    await Promise.all([state.delete('binding', 'a'), state.hostDisconnected('gw1')]);
    assert.deepEqual(kinds, [['binding', 'policy'], ['binding'], ['endpoint'], ['host'], ['binding', 'host']]);

    let writes = 0;
    const other = await tempDir();
    try {
      const counted = await ControlPlaneState.open(new StateStore(other), silentLog, { writes: { add: (n) => (writes += n), get value() { return writes; } } });
      assert.equal(writes, 1, 'the restart is a write');
      await Promise.all([counted.apply({ bindings: [lone('x')], policies: [] }), counted.apply({ bindings: [lone('y')], policies: [] })]);
      await counted.apply({ bindings: [lone('x')], policies: [] });
      assert.equal(writes, 2, 'one write for a batch of two changes, none for an unchanged apply');
    } finally {
      await removeDir(other);
    }
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

  it('commits concurrent mutations with one write, each all or nothing, none answered before it is durable', async () => {
    const saves = store.saves;
    let release: () => void = () => undefined;
    store.gate = new Promise((resolve) => (release = resolve));
    let answered = 0;
    const count = <T>(p: Promise<T>): Promise<T> => p.finally(() => (answered += 1));
    const good = Array.from({ length: 50 }, (_, i) => count(state.apply({ bindings: [lone(`b${i}`)], policies: [] })));
    const clash = count(state.apply({ bindings: [lone('late'), { ...lone('clash'), workload: 'w-b1', virtual: { workloadId: '', name: 'other', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7002' } }], policies: [] }));
    const missing = count(state.delete('binding', 'nope'));
    const unchanged = count(state.apply({ bindings: [lone('b0')], policies: [] }));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(answered, 0, 'nobody is answered while the write is in flight');
    release();
    const results = await Promise.all(good);
    assert.equal(store.saves - saves, 1, 'one write for the whole batch');
    assert.deepEqual(new Set(results.map((r) => r.version)).size, 1);
    await assert.rejects(clash, /binding\/clash: virtual\.listen: .* already used by binding\/b1/);
    await assert.rejects(missing, NotFoundError);
    assert.deepEqual((await unchanged).results, ['binding/b0 unchanged'], 'an apply sees the changes batched before it');
    const names = state.bindingStatuses().map((s) => s.binding?.name);
    assert.equal(names.length, 50);
    assert.ok(!names.includes('late'), 'a refused apply leaves no trace, even of its valid documents');
    const stored = (await new StateStore(dir).load()).state;
    assert.equal(stored.bindings.length, 50);
    assert.equal(stored.version, Number(state.version()));
  });

  it('fails every change of a batch whose write fails, and serves the next batch normally', async () => {
    const version = state.version();
    store.failing = true;
    const batch = [state.apply({ bindings: [lone('x')], policies: [] }), state.registerEndpoint(endpoint('gw1', 'usb-1'))];
    const refused = state.delete('binding', 'nope');
    for (const p of batch) await assert.rejects(p, /disk full/);
    await assert.rejects(refused, NotFoundError, 'a refusal stays a refusal');
    assert.equal(state.version(), version);
    assert.deepEqual(state.endpoints(), []);
    store.failing = false;
    await state.apply({ bindings: [lone('x')], policies: [] });
    assert.deepEqual((await new StateStore(dir).load()).state.bindings.map((b) => b.name), ['x']);
  });

  it('validates every call before it is queued', async () => {
    const saves = store.saves;
    await assert.rejects(state.apply({ bindings: [], policies: [] }), /nothing to apply/);
    await assert.rejects(state.delete('binding', ''), (err: unknown) => err instanceof ValidationError && err.field === 'binding/?: name');
    await assert.rejects(state.registerEndpoint(endpoint('gw1', 'usb-1', { kind: 'DEVICE_KIND_UNSPECIFIED' })), /endpoint\/gw1\/usb-1: kind: is required/);
    await assert.rejects(state.registerEndpoint(endpoint('gw1', 'usb-1', { path: '' })), /endpoint\/gw1\/usb-1: path: is required/);
    await assert.rejects(state.registerEndpoint(endpoint('gw 1', 'usb-1')), /endpoint: hostId: "gw 1" must not contain/);
    assert.equal(store.saves, saves);
  });

  it('takes a whole-host report in one commit, moving the version only when something changed, and refuses a malformed one', async () => {
    const first = await state.reportHost('gw1', [endpoint('gw1', 'a', { path: '/dev/a' }), endpoint('gw1', 'b', { path: '/dev/b' })]);
    assert.deepEqual([first.registered, first.markedAbsent], [2, 0]);
    const again = await state.reportHost('gw1', [endpoint('gw1', 'a', { path: '/dev/a' }), endpoint('gw1', 'b', { path: '/dev/b' })]);
    assert.equal(again.version, first.version);
    const saves = store.saves;
    const gone = await state.reportHost('gw1', [endpoint('gw1', 'a', { path: '/dev/a' })]);
    assert.deepEqual([gone.registered, gone.markedAbsent], [0, 1]);
    assert.equal(store.saves, saves + 1, 'one durable write');
    assert.equal(Number(gone.version), Number(first.version) + 1);
    await assert.rejects(state.reportHost('gw1', [endpoint('gw2', 'x')]), /is not the reporting host "gw1"/);
    await assert.rejects(state.reportHost('gw1', [endpoint('gw1', 'a'), endpoint('gw1', 'a')]), /is listed twice/);
    await assert.rejects(state.reportHost('gw1', [endpoint('gw1', 'a', { configuration: { '': 'x' } })]), /configuration: a key must not be empty/);
    assert.equal(state.version(), gone.version);
  });
});
