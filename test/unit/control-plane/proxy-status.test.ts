import * as assert from 'node:assert/strict';
import { ProxyStatusTracker } from '../../../control-plane/proxy-status';

const T = 'type.googleapis.com/devicemesh.v1.Mapping';
const info = { nodeId: 'app1', kind: 'sidecar', peer: 'ipv4:127.0.0.1:5555', connectedAt: { seconds: '1', nanos: 0 } };

describe('control-plane proxy status', () => {
  it('walks NOT_SENT → STALE → SYNCED → STALE → NACKED → STALE → SYNCED', () => {
    const p = new ProxyStatusTracker();
    p.connected(1, info);
    const state = (): unknown => p.list()[0]?.types[0];
    p.subscribed(1, T);
    assert.deepEqual(state(), { typeUrl: T, sentVersion: '', ackedVersion: '', nackedVersion: '', nackMessage: '', state: 'SYNC_STATE_NOT_SENT' });
    p.sent(1, T, '3');
    assert.equal(p.list()[0]?.types[0]?.state, 'SYNC_STATE_STALE');
    p.acked(1, T, '3');
    assert.equal(p.list()[0]?.types[0]?.state, 'SYNC_STATE_SYNCED');
    p.sent(1, T, '5');
    assert.equal(p.list()[0]?.types[0]?.state, 'SYNC_STATE_STALE');
    p.nacked(1, T, '5', 'bad listen address');
    assert.deepEqual(state(), { typeUrl: T, sentVersion: '5', ackedVersion: '3', nackedVersion: '5', nackMessage: 'bad listen address', state: 'SYNC_STATE_NACKED' });
    p.sent(1, T, '6');
    assert.equal(p.list()[0]?.types[0]?.state, 'SYNC_STATE_STALE');
    assert.equal(p.list()[0]?.types[0]?.nackMessage, 'bad listen address', 'the rejection stays visible until a later version applies');
    p.acked(1, T, '6');
    assert.deepEqual(state(), { typeUrl: T, sentVersion: '6', ackedVersion: '6', nackedVersion: '', nackMessage: '', state: 'SYNC_STATE_SYNCED' });
  });

  it('counts a proxy that already holds a version as SYNCED, clearing an old rejection', () => {
    const p = new ProxyStatusTracker();
    p.connected(1, info);
    p.subscribed(1, T);
    p.inSync(1, T, '4');
    assert.deepEqual(p.list()[0]?.types[0], { typeUrl: T, sentVersion: '4', ackedVersion: '4', nackedVersion: '', nackMessage: '', state: 'SYNC_STATE_SYNCED' });
    p.sent(1, T, '5');
    p.nacked(1, T, '5', 'bad');
    p.inSync(1, T, '6');
    assert.equal(p.list()[0]?.types[0]?.state, 'SYNC_STATE_SYNCED');
    assert.equal(p.list()[0]?.types[0]?.nackMessage, '');
  });

  it('lists connected streams only, sorted by kind and node', () => {
    const p = new ProxyStatusTracker();
    p.connected(1, { ...info, nodeId: 'b' });
    p.connected(2, { ...info, nodeId: 'gw1', kind: 'agent' });
    p.connected(3, { ...info, nodeId: 'a' });
    assert.deepEqual(p.list().map((x) => `${x.kind}/${x.nodeId}`), ['agent/gw1', 'sidecar/a', 'sidecar/b']);
    p.disconnected(2);
    p.sent(2, T, '1');
    assert.equal(p.count(), 2);
    assert.deepEqual(p.list().map((x) => x.nodeId), ['a', 'b']);
  });
});
