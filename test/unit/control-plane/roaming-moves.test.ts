import { strict as assert } from 'node:assert';
import { RoamingMoves } from '../../../control-plane/roaming-moves';
import type { Mapping } from '../../../src/proto/types';

const ID = 'usb-0403:6001:A50285BI';

function mapping(binding: string, hostId: string, version: string, roaming = true): Mapping {
  return {
    id: `${binding}-m`, binding, workloadId: 'app1', virtual: null, physicalId: `${hostId}/${ID}`, hostId, devicePath: '/dev/ttyUSB0',
    kind: 'DEVICE_KIND_SERIAL', agentAddress: `${hostId}:15020`, policy: null, serial: null, version, settings: {}, adaptiveLimit: null, roaming,
  };
}

const FOLLOW = new Set(['follow']);

describe('control plane: the moves of roaming bindings', () => {
  it('records a move when the mapping points at another gateway, with how long no gateway had it', () => {
    const moves = new RoamingMoves();
    assert.deepEqual(moves.observe([mapping('follow', 'gwa', '3')], FOLLOW, 1000), [], 'the first sighting is no move');
    assert.deepEqual(moves.observe([mapping('follow', 'gwa', '4')], FOLLOW, 1500), [], 'a new version on the same gateway is no move');
    moves.observe([], FOLLOW, 2000);
    moves.observe([], FOLLOW, 2600);
    const made = moves.observe([mapping('follow', 'gwb', '7')], FOLLOW, 3200);
    const expected = { binding: 'follow', from: `gwa/${ID}`, to: `gwb/${ID}`, awayMs: 1200, version: '7', at: 3200 };
    assert.deepEqual(made, [expected]);
    assert.deepEqual(moves.list(), [expected]);
  });

  it('records a move within one commit as away 0 ms, and the way back as a second move', () => {
    const moves = new RoamingMoves();
    moves.observe([mapping('follow', 'gwa', '1')], FOLLOW, 0);
    moves.observe([mapping('follow', 'gwb', '2')], FOLLOW, 10);
    moves.observe([mapping('follow', 'gwa', '3')], FOLLOW, 20);
    assert.deepEqual(moves.list().map((m) => [m.from, m.to, m.awayMs]), [[`gwa/${ID}`, `gwb/${ID}`, 0], [`gwb/${ID}`, `gwa/${ID}`, 0]]);
  });

  it('ignores mappings that do not roam, and forgets a deleted binding (re-created, it starts afresh)', () => {
    const moves = new RoamingMoves();
    moves.observe([mapping('pinned', 'gwa', '1', false)], new Set(['pinned']), 0);
    moves.observe([mapping('pinned', 'gwb', '2', false)], new Set(['pinned']), 10);
    moves.observe([mapping('follow', 'gwa', '3')], FOLLOW, 20);
    moves.observe([], new Set(), 30);
    moves.observe([mapping('follow', 'gwb', '4')], FOLLOW, 40);
    assert.deepEqual(moves.list(), []);
  });

  it('keeps the latest moves up to its capacity, oldest first', () => {
    const moves = new RoamingMoves(2);
    for (let i = 0; i < 5; i++) moves.observe([mapping('follow', i % 2 === 0 ? 'gwa' : 'gwb', String(i))], FOLLOW, i);
    assert.deepEqual(moves.list().map((m) => m.version), ['3', '4']);
  });
});
