import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StateStore, STATE_FILE, type StoredState } from '../../../control-plane/state-store';
import { ControlPlaneState } from '../../../control-plane/state';
import { DeviceMeshError } from '../../../src/errors';
import { binding, endpoint, host, policy, removeDir, silentLog, tempDir } from './fixtures';

describe('control-plane state store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('starts empty on a fresh data directory', async () => {
    const state = await new StateStore(path.join(dir, 'not-yet')).load();
    assert.deepEqual(state, { version: 0, bindings: [], policies: [], endpoints: [], hosts: [], mappings: [] });
  });

  it('round-trips, bringing endpoints back UNKNOWN and hosts DISCONNECTED', async () => {
    const store = new StateStore(dir);
    const saved: StoredState = {
      version: 42,
      bindings: [binding('a', { policyRef: 'lab' })],
      policies: [policy('lab', { queueDepth: 8 })],
      endpoints: [endpoint('gw1', 'usb-1', { labels: { rack: 'r1' } })],
      hosts: [host('gw1')],
      mappings: [],
    };
    await store.save(saved);
    const loaded = await store.load();
    assert.equal(loaded.version, 42);
    assert.deepEqual(loaded.bindings, saved.bindings);
    assert.deepEqual(loaded.policies, saved.policies);
    assert.deepEqual(loaded.endpoints, [{ ...saved.endpoints[0], state: 'ENDPOINT_STATE_UNKNOWN' }]);
    assert.deepEqual(loaded.hosts, [{ ...saved.hosts[0], state: 'HOST_STATE_DISCONNECTED' }]);
    assert.deepEqual(await fs.readdir(dir), [STATE_FILE], 'no temp file is left behind');
    const text = await fs.readFile(path.join(dir, STATE_FILE), 'utf8');
    assert.match(text, /"version": "42"/, 'the counter is stored as a decimal string');
  });

  it('never lets the version counter go back across restarts', async () => {
    const first = await ControlPlaneState.open(new StateStore(dir), silentLog);
    await first.apply({ bindings: [binding('a')], policies: [] });
    const before = Number(first.version());
    const second = await ControlPlaneState.open(new StateStore(dir), silentLog);
    assert.ok(Number(second.version()) > before, `${second.version()} > ${before}`);
    const third = await ControlPlaneState.open(new StateStore(dir), silentLog);
    assert.ok(Number(third.version()) > Number(second.version()));
    assert.deepEqual(third.bindingStatuses().map((s) => s.binding?.name), ['a']);
  });

  it('refuses a corrupt state file with an error naming it', async () => {
    const file = path.join(dir, STATE_FILE);
    for (const body of ['{ not json', '[]', '{"format":"devicemesh-control-plane-state/1","version":"-1"}', '{"format":"devicemesh-control-plane-state/1","version":"3","bindings":{}}']) {
      await fs.writeFile(file, body);
      await assert.rejects(new StateStore(dir).load(), (err: unknown) => {
        assert.ok(err instanceof DeviceMeshError);
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, /corrupt/);
        return true;
      });
    }
  });

  it('refuses a state file holding an invalid document', async () => {
    const store = new StateStore(dir);
    await store.save({ version: 1, bindings: [binding('Not Valid')], policies: [], endpoints: [], hosts: [], mappings: [] });
    await assert.rejects(store.load(), /corrupt: binding\/Not Valid: name/);
  });
});
