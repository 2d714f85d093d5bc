import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import fc from 'fast-check';
import { canonicalMapping } from '../../../control-plane/canonical';
import { ControlPlaneState } from '../../../control-plane/state';
import { diffStates } from '../../../control-plane/state-delta';
import { LOG_FILE, StateStore, STATE_FILE, type StoredState, type WriteReport } from '../../../control-plane/state-store';
import { DeviceMeshError } from '../../../src/errors';
import type { Mapping } from '../../../src/proto/types';
import { binding, endpoint, host, policy, removeDir, silentLog, tempDir } from './fixtures';

/** What load() gives back for a state that was saved: nothing said about the world is believed yet. */
function asLoaded(state: StoredState): StoredState {
  return {
    ...state,
    endpoints: state.endpoints.map((e) => ({ ...e, state: 'ENDPOINT_STATE_UNKNOWN' })),
    hosts: state.hosts.map((h) => ({ ...h, state: 'HOST_STATE_DISCONNECTED' })),
  };
}

function mapping(id: string, version: number): Mapping {
  return canonicalMapping({ id, binding: id, workloadId: 'app1', physicalId: 'gw1/usb-1', hostId: 'gw1', version: String(version) });
}

const lastSaved = new WeakMap<StateStore, StoredState>();

/** Saves a whole state as the control plane does: as its difference from the one saved before. */
function save(store: StateStore, state: StoredState): Promise<WriteReport> {
  const before = lastSaved.get(store) ?? { version: 0, bindings: [], policies: [], endpoints: [], hosts: [], mappings: [] };
  lastSaved.set(store, state);
  return store.save({ delta: diffStates(before, state), full: () => state });
}

const EMPTY: StoredState = { version: 1, bindings: [], policies: [], endpoints: [], hosts: [], mappings: [] };

/** A history of states, each a small change of the one before: adds, updates and removals in every list. */
function history(): StoredState[] {
  const out: StoredState[] = [
    { version: 3, bindings: [], policies: [policy('lab')], endpoints: [endpoint('gw1', 'usb-1')], hosts: [host('gw1')], mappings: [] },
  ];
  for (let i = 0; i < 8; i++) {
    const s = out[out.length - 1] as StoredState;
    const version = s.version + 1 + (i % 2);
    let bindings = [...s.bindings, binding(`b${i}`)];
    if (i === 4) bindings = bindings.filter((b) => b.name !== 'b1');
    if (i === 6) bindings = bindings.map((b) => (b.name === 'b2' ? binding('b2', { workload: 'app2' }) : b));
    out.push({
      version,
      bindings,
      policies: i === 3 ? [] : i === 5 ? [policy('lab', { queueDepth: 8 })] : s.policies,
      endpoints: i === 2 ? [endpoint('gw1', 'usb-1', { labels: { rack: String(i) } }), endpoint('gw1', 'usb-2')] : i === 7 ? [] : s.endpoints,
      hosts: i === 1 ? [host('gw1', '127.0.0.1:16000')] : s.hosts,
      mappings: [...s.mappings.filter((m) => m.id !== 'b0'), mapping(`b${i}`, version)],
    });
  }
  return out;
}

describe('control-plane state store', () => {
  let dir: string;
  let logFile: string;
  beforeEach(async () => {
    dir = await tempDir();
    logFile = path.join(dir, LOG_FILE);
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  /** Saves the history with one store; returns the log's size after each write. */
  async function saveHistory(states: readonly StoredState[]): Promise<number[]> {
    const store = new StateStore(dir);
    const ends: number[] = [];
    for (const s of states) {
      await save(store, s);
      ends.push((await fs.stat(logFile)).size);
    }
    return ends;
  }

  it('starts empty on a fresh data directory', async () => {
    const loaded = await new StateStore(path.join(dir, 'not-yet')).load();
    assert.deepEqual(loaded, { state: { ...EMPTY, version: 0 }, replayed: 0, tornBytes: 0 });
  });

  it('round-trips a snapshot, bringing endpoints back UNKNOWN and hosts DISCONNECTED', async () => {
    const saved: StoredState = {
      version: 42,
      bindings: [binding('a', { policyRef: 'lab' })],
      policies: [policy('lab', { queueDepth: 8 })],
      endpoints: [endpoint('gw1', 'usb-1', { labels: { rack: 'r1' } })],
      hosts: [host('gw1')],
      mappings: [],
    };
    const report = await save(new StateStore(dir), saved);
    assert.ok(report.snapshotBytes > 0 && report.logBytes === 0, 'the first write of a process is a snapshot');
    const loaded = await new StateStore(dir).load();
    assert.deepEqual(loaded.state, asLoaded(saved));
    assert.deepEqual((await fs.readdir(dir)).sort(), [STATE_FILE, LOG_FILE], 'no temp file is left behind');
    assert.equal((await fs.stat(logFile)).size, 0);
    const text = await fs.readFile(path.join(dir, STATE_FILE), 'utf8');
    assert.match(text, /"version": "42"/, 'the counter is stored as a decimal string');
  });

  it('appends each later write to the log as a difference, and replays the log on load', async () => {
    const states = history();
    await saveHistory(states);
    const snapshot = JSON.parse(await fs.readFile(path.join(dir, STATE_FILE), 'utf8')) as { version: string };
    assert.equal(snapshot.version, '3', 'the snapshot is not rewritten');
    const logSize = (await fs.stat(logFile)).size;
    assert.ok(logSize > 0 && logSize < 8 * 1024, `the log holds differences only (${logSize} bytes)`);
    const loaded = await new StateStore(dir).load();
    assert.equal(loaded.replayed, states.length - 1);
    assert.deepEqual(loaded.state, asLoaded(states[states.length - 1] as StoredState));
  });

  it('folds the log into a new snapshot once it grows, and skips records a crash kept after the fold', async () => {
    const store = new StateStore(dir, { compactBytes: 1500 });
    const states = history();
    let folds = 0;
    let folded = Buffer.alloc(0);
    for (const s of states) {
      const before = await fs.readFile(logFile).catch(() => Buffer.alloc(0));
      const report = await save(store, s);
      if (report.logBytes > 0 && report.snapshotBytes > 0) {
        folds += 1;
        folded = before;
      }
    }
    assert.ok(folds > 0, 'the log was folded at least once');
    const latest = asLoaded(states[states.length - 1] as StoredState);
    assert.deepEqual((await new StateStore(dir).load()).state, latest);
    // A crash between the snapshot's rename and the log's truncation leaves records the snapshot
    // holds in front of those appended later: they are skipped, not applied twice.
    await fs.writeFile(logFile, Buffer.concat([folded, await fs.readFile(logFile)]));
    assert.deepEqual((await new StateStore(dir).load()).state, latest);
  });

  it('discards a torn last write at any byte, always landing on a state that was saved', async () => {
    const states = history();
    const ends = await saveHistory(states);
    const log = await fs.readFile(logFile);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: log.length }), fc.uint8Array({ maxLength: 64 }), async (cut, junk) => {
        // A crash mid-append leaves a prefix of the record, possibly followed by junk (zeros, stale blocks).
        await fs.writeFile(logFile, Buffer.concat([log.subarray(0, cut), Buffer.from(junk)]));
        const loaded = await new StateStore(dir).load();
        const complete = ends.filter((end) => end <= cut).length - 1;
        assert.deepEqual(loaded.state, asLoaded(states[complete] as StoredState));
        assert.equal(loaded.tornBytes, cut - (ends[complete] as number) + junk.length);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a log damaged before its last record, naming the file and the byte', async () => {
    const states = history();
    const ends = await saveHistory(states);
    const log = await fs.readFile(logFile);
    const lastRecord = ends[ends.length - 2] as number;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: log.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, flip) => {
        const damaged = Buffer.from(log);
        damaged[at] = (damaged[at] as number) ^ flip;
        await fs.writeFile(logFile, damaged);
        if (at >= lastRecord) {
          // Damage in the last record is what a torn write looks like: the state before it.
          assert.deepEqual((await new StateStore(dir).load()).state, asLoaded(states[states.length - 2] as StoredState));
          return;
        }
        await assert.rejects(new StateStore(dir).load(), (err: unknown) => {
          assert.ok(err instanceof DeviceMeshError);
          assert.ok(err.message.includes(logFile), err.message);
          assert.match(err.message, /is corrupt: the record at byte \d+ is damaged/);
          return true;
        });
      }),
      { numRuns: 200 },
    );
  });

  it('ignores a snapshot that a crash left half written in its temp file', async () => {
    const states = history();
    await saveHistory(states);
    const text = JSON.stringify({ ...states[0], format: 'devicemesh-control-plane-state/1', version: '99' });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: text.length }), async (cut) => {
        await fs.writeFile(path.join(dir, `${STATE_FILE}.tmp`), text.slice(0, cut));
        assert.deepEqual((await new StateStore(dir).load()).state, asLoaded(states[states.length - 1] as StoredState));
      }),
      { numRuns: 50 },
    );
    await save(new StateStore(dir), states[0] as StoredState);
    assert.deepEqual((await fs.readdir(dir)).sort(), [STATE_FILE, LOG_FILE], 'the next snapshot replaces it');
  });

  it('refuses a log without the snapshot it continues', async () => {
    await fs.writeFile(logFile, 'x');
    await assert.rejects(new StateStore(dir).load(), /state\.log is corrupt: there is no snapshot state\.json/);
  });

  it('starts afresh with a snapshot after an append failed, dropping whatever the failure left in the log', async () => {
    const store = new StateStore(dir);
    const states = history();
    await save(store, states[0] as StoredState);
    await fs.rm(logFile);
    await fs.mkdir(logFile);
    await assert.rejects(save(store, states[1] as StoredState), (err: unknown) => err instanceof DeviceMeshError && err.code === 'UNAVAILABLE');
    await fs.rmdir(logFile);
    await fs.writeFile(logFile, Buffer.from([0xff, 0x44, 0x4d, 0x4c, 0, 0, 0, 9]));
    const report = await save(store, states[2] as StoredState);
    assert.ok(report.snapshotBytes > 0);
    assert.equal((await fs.stat(logFile)).size, 0);
    assert.deepEqual((await new StateStore(dir).load()).state, asLoaded(states[2] as StoredState));
  });

  it('never lets the version counter go back across restarts', async () => {
    const first = await ControlPlaneState.open(new StateStore(dir), silentLog);
    await first.apply({ bindings: [binding('a')], policies: [] });
    const before = Number(first.version());
    const second = await ControlPlaneState.open(new StateStore(dir), silentLog);
    assert.ok(Number(second.version()) > before, `${second.version()} > ${before}`);
    await second.apply({ bindings: [binding('b', { workload: 'app2', device: { host: 'gw1', path: '/dev/ttyUSB1', id: '' } })], policies: [] });
    const third = await ControlPlaneState.open(new StateStore(dir), silentLog);
    assert.ok(Number(third.version()) > Number(second.version()));
    assert.deepEqual(third.bindingStatuses().map((s) => s.binding?.name), ['a', 'b']);
  });

  it('refuses a corrupt snapshot with an error naming it', async () => {
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

  it('refuses a state holding an invalid document, in the snapshot or in the log', async () => {
    await save(new StateStore(dir), { ...EMPTY, bindings: [binding('Not Valid')] });
    await assert.rejects(new StateStore(dir).load(), /state\.json is corrupt: binding\/Not Valid: name/);
    const store = new StateStore(dir);
    await save(store, EMPTY);
    await save(store, { ...EMPTY, version: 2, bindings: [binding('Bad Name')] });
    await assert.rejects(new StateStore(dir).load(), /state\.log is corrupt: record at byte 0: binding\/Bad Name: name/);
  });
});
