import * as assert from 'node:assert/strict';
import type { DiscoveryResponse } from '../../../src/proto/types';
import { decodeMapping, Mesh, modemBinding, sidecarNode, sleep, sotwRequest, waitFor } from './harness';

describe('state-of-the-world xDS on raw streams', function () {
  let mesh: Mesh;
  beforeEach(async () => {
    mesh = await Mesh.start();
    await mesh.gatewayUp('sotw', ['usb-1', 'usb-2']);
    await mesh.apply(modemBinding('m1', { port: 7001 }), modemBinding('m2', { device: 'usb-2', port: 7002 }));
  });
  afterEach(async () => {
    await mesh.close();
  });

  it('sends the whole set on subscribe and on every change, the empty set once everything is removed', async () => {
    const s = mesh.sotw();
    s.call.on('data', (r: DiscoveryResponse) => s.call.write(sotwRequest({ versionInfo: r.versionInfo, responseNonce: r.nonce })));
    s.call.write(sotwRequest({ node: sidecarNode('app1') }));
    const first = await s.response(0);
    assert.deepEqual(first.resources.map((r) => decodeMapping(r).binding).sort(), ['m1', 'm2']);

    await mesh.apply(modemBinding('m1', { port: 7001, depth: 3 }));
    const second = await s.response(1);
    assert.equal(second.resources.length, 2, 'everything, not just the change');

    await mesh.deleteBinding('m1');
    await mesh.deleteBinding('m2');
    const empty = await waitFor('the empty set', () => s.responses.find((r) => r.resources.length === 0));
    const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    assert.equal(synced.ackedVersion, empty.versionInfo);
  });

  it('takes a nonce only on the stream it was sent on, and records the version its response carried', async () => {
    const s = mesh.sotw();
    s.call.write(sotwRequest({ node: sidecarNode('app1') }));
    const first = await s.response(0);
    const other = mesh.sotw();
    other.call.write(sotwRequest({ node: sidecarNode('app2') }));
    const foreign = await other.response(0);
    s.call.write(sotwRequest({ versionInfo: first.versionInfo, responseNonce: foreign.nonce }));
    await sleep(100);
    assert.equal((await mesh.typeStatus('app1'))?.state, 'SYNC_STATE_STALE');

    // A proxy that misreports the version it ACKs is taken at its nonce's word.
    s.call.write(sotwRequest({ versionInfo: 'whatever', responseNonce: first.nonce }));
    const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    assert.equal(synced.ackedVersion, first.versionInfo);
  });

  it('goes NACKED, resends nothing, and ends SYNCED once a corrected version is ACKed', async () => {
    const s = mesh.sotw();
    s.call.write(sotwRequest({ node: sidecarNode('app1') }));
    const first = await s.response(0);
    s.call.write(sotwRequest({ responseNonce: first.nonce, errorDetail: { code: 3, message: 'no thanks' } }));
    const nacked = await mesh.waitForState('app1', 'SYNC_STATE_NACKED');
    assert.deepEqual([nacked.nackedVersion, nacked.nackMessage], [first.versionInfo, 'no thanks']);
    await sleep(200);
    assert.equal(s.responses.length, 1);

    await mesh.apply(modemBinding('m1', { port: 7001, depth: 9 }));
    const corrected = await s.response(1);
    s.call.write(sotwRequest({ versionInfo: corrected.versionInfo, responseNonce: corrected.nonce }));
    const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    assert.deepEqual([synced.ackedVersion, synced.nackMessage, synced.nackedVersion], [corrected.versionInfo, '', '']);
  });

  it('honours resource_names: only the named resources, a changed set answered at once, "*" or none for all', async () => {
    const s = mesh.sotw();
    const all = mesh.sotw();
    all.call.write(sotwRequest({ node: sidecarNode('app1') }));
    const ids = new Map((await all.response(0)).resources.map((r) => [decodeMapping(r).binding, decodeMapping(r).id]));
    const m1 = ids.get('m1') as string;
    const m2 = ids.get('m2') as string;
    const bindings = (r: DiscoveryResponse): string[] => r.resources.map((x) => decodeMapping(x).binding).sort();

    s.call.write(sotwRequest({ node: sidecarNode('app1'), resourceNames: [m1] }));
    const first = await s.response(0);
    assert.deepEqual(bindings(first), ['m1']);

    // The ACK names a larger set: answered with it, though nothing changed.
    s.call.write(sotwRequest({ versionInfo: first.versionInfo, responseNonce: first.nonce, resourceNames: [m1, m2] }));
    const second = await s.response(1);
    assert.deepEqual(bindings(second), ['m1', 'm2']);

    // A change to a resource outside the subscription sends nothing, and the proxy counts as in sync.
    s.call.write(sotwRequest({ versionInfo: second.versionInfo, responseNonce: second.nonce, resourceNames: [m1] }));
    const third = await s.response(2);
    assert.deepEqual(bindings(third), ['m1']);
    s.call.write(sotwRequest({ versionInfo: third.versionInfo, responseNonce: third.nonce, resourceNames: [m1] }));
    await mesh.apply(modemBinding('m2', { device: 'usb-2', port: 7002, depth: 5 }));
    await sleep(300);
    assert.equal(s.responses.length, 3, 'm2 changed, m1 did not: nothing to send');
    // A change to a named one is sent.
    await mesh.apply(modemBinding('m1', { port: 7001, depth: 7 }));
    const fourth = await s.response(3);
    assert.deepEqual(bindings(fourth), ['m1']);

    // A name that is no resource: an empty set; "*" is everything again.
    s.call.write(sotwRequest({ versionInfo: fourth.versionInfo, responseNonce: fourth.nonce, resourceNames: ['no-such-mapping'] }));
    assert.deepEqual(bindings(await s.response(4)), []);
    const fifth = s.responses[4] as DiscoveryResponse;
    s.call.write(sotwRequest({ versionInfo: fifth.versionInfo, responseNonce: fifth.nonce, resourceNames: ['*'] }));
    assert.deepEqual(bindings(await s.response(5)), ['m1', 'm2']);
  });
});
