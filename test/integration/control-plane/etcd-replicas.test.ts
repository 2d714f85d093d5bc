import { strict as assert } from 'node:assert';
import { EtcdStateStore } from '../../../control-plane/etcd-state-store';
import { StaleStateError } from '../../../control-plane/state-backend';
import { ControlPlaneState } from '../../../control-plane/state';
import type { Mapping } from '../../../src/proto/types';
import { EtcdServer, haveEtcd } from '../../helpers/etcd-server';
import { waitFor } from '../../helpers/processes';
import { binding, endpoint, silentLog } from '../../unit/control-plane/fixtures';

/** The control plane's state on etcd, shared by replicas: one version sequence, every replica told of every commit. */
describe('control plane: state on etcd shared by replicas', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  const opened: { state: ControlPlaneState; store: EtcdStateStore }[] = [];
  let prefixes = 0;
  /** Writes refused because the other replica took their version first. */
  let staleWrites = 0;

  before(async function () {
    if (!haveEtcd()) {
      console.log('      skipped: etcd is not installed (scripts/install-test-deps.sh installs etcd-server)');
      this.skip();
    }
    etcd = await EtcdServer.start();
  });

  after(async () => {
    for (const { state, store } of opened) {
      await state.idle();
      await store.close();
    }
    await etcd?.stop();
  });

  const replicas = async (n: number, compactRecords?: number): Promise<ControlPlaneState[]> => {
    const prefix = `/test-${++prefixes}/`;
    const out: ControlPlaneState[] = [];
    for (let i = 0; i < n; i++) {
      const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, ...(compactRecords ? { compactRecords } : {}) });
      const save = store.save.bind(store);
      store.save = async (write) => {
        try {
          return await save(write);
        } catch (err) {
          if (err instanceof StaleStateError) staleWrites++;
          throw err;
        }
      };
      const state = await ControlPlaneState.open(store, silentLog);
      opened.push({ state, store });
      out.push(state);
    }
    return out;
  };

  const same = (a: readonly Mapping[], b: readonly Mapping[]): void => assert.deepEqual(a, b);

  it('a change applied through one replica reaches the other, at the same version', async () => {
    const [a, b] = (await replicas(2)) as [ControlPlaneState, ControlPlaneState];
    const seen: string[] = [];
    b.onCommit((_m, version) => seen.push(version));
    await a.hostConnected('gw1', '127.0.0.1:15020');
    await a.registerEndpoint(endpoint('gw1', '/dev/ttyUSB0'));
    const { version } = await a.apply({ bindings: [binding('modem')], policies: [] });
    await waitFor('replica b to have the binding', () => b.version() === version);
    assert.deepEqual(b.bindingStatuses().map((s) => s.binding?.name), ['modem']);
    same(b.mappings(), a.mappings());
    assert.equal(b.mappings().length, 1);
    assert.deepEqual(b.endpoints().map((e) => e.id), ['gw1//dev/ttyUSB0']);
    assert.equal(seen.at(-1), version, 'replica b told its listeners (the discovery server) of the change');
  });

  it('concurrent writes through both replicas all commit, with one strictly increasing version sequence', async () => {
    const [a, b] = (await replicas(2)) as [ControlPlaneState, ControlPlaneState];
    const put = (replica: ControlPlaneState, i: number): Promise<{ version: string }> =>
      replica.apply({ bindings: [binding(`b${i}`, { workload: `w${i}`, device: { host: 'gw1', path: `/dev/ttyUSB${i}`, id: '' } })], policies: [] });
    // Each round, both replicas write at once: one of them finds its version taken, catches up and writes again.
    const results: { version: string }[] = [];
    for (let round = 0; round < 10; round++) results.push(...(await Promise.all([put(a, 2 * round), put(b, 2 * round + 1)])));
    assert.ok(staleWrites > 0, 'the replicas never raced for a version: the test did not exercise catching up');
    const versions = results.map((r) => Number(r.version)).sort((x, y) => x - y);
    assert.equal(new Set(versions).size, versions.length, `a version was handed out twice: ${versions.join(' ')}`);
    await waitFor('both replicas to agree', () => a.version() === b.version() && a.version() === String(versions.at(-1)));
    assert.equal(a.bindingStatuses().length, 20);
    same(a.mappings(), b.mappings());
    assert.deepEqual(a.policies(), b.policies());
  });

  it('a replica started later loads everything, and the log folds into a snapshot without losing a change', async () => {
    const [a] = (await replicas(1, 3)) as [ControlPlaneState];
    for (let i = 0; i < 7; i++) await a.apply({ bindings: [binding(`c${i}`, { workload: `w${i}`, device: { host: 'gw1', path: `/dev/ttyS${i}`, id: '' } })], policies: [] });
    const last = Number(await a.delete('binding', 'c0'));
    const prefix = `/test-${prefixes}/`;
    const store = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix, compactRecords: 3 });
    const late = await ControlPlaneState.open(store, silentLog);
    opened.push({ state: late, store });
    assert.deepEqual(late.bindingStatuses().map((s) => s.binding?.name), ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
    // The late replica's own start is a version after the first one's last.
    assert.equal(Number(late.version()), last + 1);
    await waitFor('the first replica to see the late one\'s start', () => a.version() === late.version());
  });

  it('refuses a write for a version another replica took (the store\'s compare-and-swap)', async () => {
    const prefix = `/test-${++prefixes}/`;
    const one = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    const two = new EtcdStateStore({ endpoints: [etcd.endpoint], prefix });
    try {
      const write = (version: number): Parameters<EtcdStateStore['save']>[0] => ({
        delta: {
          version,
          bindings: { put: [], remove: [] },
          policies: { put: [], remove: [] },
          endpoints: { put: [], remove: [] },
          hosts: { put: [], remove: [] },
          mappings: { put: [], remove: [] },
        },
        full: () => ({ version, bindings: [], policies: [], endpoints: [], hosts: [], mappings: [] }),
      });
      await one.save(write(1));
      await assert.rejects(two.save(write(1)), (err: unknown) => err instanceof StaleStateError && /version 1 was committed by another replica/.test(err.message));
      await assert.rejects(two.save(write(3)), StaleStateError);
      await two.save(write(2));
      assert.equal((await one.load()).state.version, 2);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it('says clearly when etcd cannot be reached', async () => {
    const store = new EtcdStateStore({ endpoints: ['http://127.0.0.1:1'], prefix: '/nowhere/' });
    try {
      await assert.rejects(store.load(), /etcd read failed \(etcd http:\/\/127\.0\.0\.1:1 \/nowhere\/\)/);
    } finally {
      await store.close();
    }
  });
});
