import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { ListProxiesResponse } from '../../../src/proto/types';
import type { DeltaDiscoveryResponse } from '../../../src/xds/delta-messages';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';
import { decodeMapping, deltaRequest, Mesh, modemBinding, sidecarNode, sleep } from './harness';

/** name → version of a response's resources. */
function versions(r: DeltaDiscoveryResponse): Record<string, string> {
  return Object.fromEntries(r.resources.map((x) => [x.name, x.version]));
}

describe('incremental xDS on raw streams', function () {
  let mesh: Mesh;
  /** Mapping ids of bindings m1 and m2, once applied. */
  let ids: { m1: string; m2: string };

  beforeEach(async () => {
    mesh = await Mesh.start();
    await mesh.gatewayUp('delta', ['usb-1', 'usb-2', 'usb-3']);
    await mesh.apply(modemBinding('m1', { port: 7001 }), modemBinding('m2', { device: 'usb-2', port: 7002 }));
    const list = await mesh.call<{ mappings: { id: string; binding: string }[] }>('bindings', 'ListMappings', { workloadId: 'app1' });
    const id = (b: string): string => list.mappings.find((m) => m.binding === b)?.id ?? assert.fail(`no mapping for ${b}`);
    ids = { m1: id('m1'), m2: id('m2') };
  });
  afterEach(async () => {
    await mesh.close();
  });

  it('answers a wildcard subscription with every resource, then sends only what changed and what was removed', async () => {
    const s = mesh.delta();
    s.call.write(deltaRequest({ node: sidecarNode('app1') }));
    await s.headers;
    const first = await s.response(0);
    assert.equal(first.typeUrl, MAPPING_TYPE_URL);
    assert.deepEqual(Object.keys(versions(first)).sort(), [ids.m1, ids.m2].sort());
    assert.deepEqual(first.removedResources, []);
    assert.ok(first.nonce && first.systemVersionInfo);
    const any = first.resources.find((r) => r.name === ids.m1)?.resource;
    assert.equal(any?.type_url, MAPPING_TYPE_URL);
    assert.equal(decodeMapping(any!).binding, 'm1');
    s.call.write(deltaRequest({ responseNonce: first.nonce }));
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');

    await mesh.apply(modemBinding('m2', { device: 'usb-2', port: 7002, depth: 9 }));
    const second = await s.response(1);
    assert.deepEqual(Object.keys(versions(second)), [ids.m2], 'only the changed resource');
    assert.notEqual(versions(second)[ids.m2], versions(first)[ids.m2]);
    assert.equal(decodeMapping(second.resources[0]!.resource!).policy?.queueDepth, 9);
    assert.ok(Number(second.systemVersionInfo) > Number(first.systemVersionInfo));
    s.call.write(deltaRequest({ responseNonce: second.nonce }));

    await mesh.deleteBinding('m1');
    const third = await s.response(2);
    assert.deepEqual(third.resources, []);
    assert.deepEqual(third.removedResources, [ids.m1]);
    s.call.write(deltaRequest({ responseNonce: third.nonce }));
    const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    assert.equal(synced.ackedVersion, third.systemVersionInfo);
  });

  it('treats "*" as the wildcard too', async () => {
    const s = mesh.delta();
    s.call.write(deltaRequest({ node: sidecarNode('app1'), resourceNamesSubscribe: ['*'] }));
    assert.equal((await s.response(0)).resources.length, 2);
  });

  it('answers an empty wildcard subscription of a proxy without resources, so that it can start', async () => {
    const s = mesh.delta();
    s.call.write(deltaRequest({ node: sidecarNode('nobody') }));
    const first = await s.response(0);
    assert.deepEqual([first.resources, first.removedResources], [[], []]);
  });

  it('serves explicit subscriptions by name: subscribe, a name that does not exist, unsubscribe', async () => {
    const s = mesh.delta();
    s.call.write(deltaRequest({ node: sidecarNode('app1'), resourceNamesSubscribe: [ids.m1, 'no-such-mapping'] }));
    const first = await s.response(0);
    assert.deepEqual(Object.keys(versions(first)), [ids.m1]);
    assert.deepEqual(first.removedResources, ['no-such-mapping'], 'told that it does not exist');
    s.call.write(deltaRequest({ responseNonce: first.nonce }));

    // m2 changes: not subscribed, nothing sent.
    await mesh.apply(modemBinding('m2', { device: 'usb-2', port: 7002, depth: 7 }));
    await sleep(150);
    assert.equal(s.responses.length, 1);

    s.call.write(deltaRequest({ resourceNamesSubscribe: [ids.m2] }));
    const second = await s.response(1);
    assert.deepEqual(Object.keys(versions(second)), [ids.m2]);
    assert.deepEqual(second.removedResources, []);
    s.call.write(deltaRequest({ responseNonce: second.nonce, resourceNamesUnsubscribe: [ids.m1] }));
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');

    // m1 is no longer subscribed: its change and its removal are not sent.
    await mesh.apply(modemBinding('m1', { port: 7001, depth: 3 }));
    await mesh.deleteBinding('m1');
    await sleep(150);
    assert.equal(s.responses.length, 2);

    // Turning the wildcard on brings everything it does not have.
    await mesh.apply(modemBinding('m3', { device: 'usb-3', port: 7003 }));
    await sleep(100);
    assert.equal(s.responses.length, 2);
    s.call.write(deltaRequest({ resourceNamesSubscribe: ['*'] }));
    const third = await s.response(2);
    assert.deepEqual(third.resources.map((r) => decodeMapping(r.resource!).binding), ['m3']);
  });

  it('sends a reconnecting proxy only the difference from its initial_resource_versions, and nothing when it is current', async () => {
    const s1 = mesh.delta();
    s1.call.write(deltaRequest({ node: sidecarNode('app1') }));
    const held = versions(await s1.response(0));
    s1.call.cancel();

    // Everything current: not a single response, and the proxy counts as SYNCED.
    const s2 = mesh.delta();
    s2.call.write(deltaRequest({ node: sidecarNode('app1'), initialResourceVersions: held }));
    await s2.headers;
    const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    await sleep(200);
    assert.equal(s2.responses.length, 0);
    assert.equal(synced.sentVersion, synced.ackedVersion);
    s2.call.cancel();

    // One resource stale and one the control plane has never heard of.
    const s3 = mesh.delta();
    s3.call.write(deltaRequest({ node: sidecarNode('app1'), initialResourceVersions: { ...held, [ids.m2]: 'old', gone: 'x' } }));
    const diff = await s3.response(0);
    assert.deepEqual(Object.keys(versions(diff)), [ids.m2]);
    assert.equal(versions(diff)[ids.m2], held[ids.m2]);
    assert.deepEqual(diff.removedResources, ['gone']);
  });

  it('ignores a stale nonce, and takes only the latest nonce as the ACK', async () => {
    const s = mesh.delta();
    s.call.write(deltaRequest({ node: sidecarNode('app1') }));
    const first = await s.response(0);
    s.call.write(deltaRequest({ responseNonce: 'never-sent', errorDetail: { code: 3, message: 'stale complaint' } }));
    s.call.write(deltaRequest({ responseNonce: `${first.nonce}x` }));
    await sleep(100);
    const t = await mesh.typeStatus('app1');
    assert.deepEqual([t?.state, t?.nackMessage], ['SYNC_STATE_STALE', '']);

    // A nonce from another stream is stale here too.
    const other = mesh.delta();
    other.call.write(deltaRequest({ node: sidecarNode('app2') }));
    const foreign = await other.response(0);
    s.call.write(deltaRequest({ responseNonce: foreign.nonce }));
    await sleep(100);
    assert.equal((await mesh.typeStatus('app1'))?.state, 'SYNC_STATE_STALE');

    s.call.write(deltaRequest({ responseNonce: first.nonce }));
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    assert.equal(s.responses.length, 1);
  });

  it('records a NACK, keeps to the last good state, resends nothing, and resends the difference on the next change', async () => {
    const s = mesh.delta();
    s.call.write(deltaRequest({ node: sidecarNode('app1') }));
    const first = await s.response(0);
    s.call.write(deltaRequest({ responseNonce: first.nonce }));
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');

    await mesh.apply(modemBinding('m1', { port: 7001, depth: 13 }));
    const bad = await s.response(1);
    s.call.write(deltaRequest({ responseNonce: bad.nonce, errorDetail: { code: 3, message: 'queue depth 13 refused' } }));
    const nacked = await mesh.waitForState('app1', 'SYNC_STATE_NACKED');
    assert.deepEqual([nacked.nackedVersion, nacked.nackMessage, nacked.ackedVersion], [bad.systemVersionInfo, 'queue depth 13 refused', first.systemVersionInfo]);
    await sleep(300);
    assert.equal(s.responses.length, 2, 'the rejected version is not sent again');

    // m2 changes: the proxy still holds the old m1, so m1 comes again with m2.
    await mesh.apply(modemBinding('m2', { device: 'usb-2', port: 7002, depth: 2 }));
    const next = await s.response(2);
    assert.deepEqual(Object.keys(versions(next)).sort(), [ids.m1, ids.m2].sort());
    s.call.write(deltaRequest({ responseNonce: next.nonce, errorDetail: { code: 3, message: 'still 13' } }));
    await mesh.waitForState('app1', 'SYNC_STATE_NACKED');

    // Corrected: the difference from what the proxy holds goes out again, and is ACKed.
    await mesh.apply(modemBinding('m1', { port: 7001, depth: 12 }));
    const fixed = await s.response(3);
    assert.deepEqual(Object.keys(versions(fixed)).sort(), [ids.m1, ids.m2].sort());
    assert.equal(decodeMapping(fixed.resources.find((r) => r.name === ids.m1)!.resource!).policy?.queueDepth, 12);
    s.call.write(deltaRequest({ responseNonce: fixed.nonce }));
    const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    assert.deepEqual([synced.ackedVersion, synced.nackMessage], [fixed.systemVersionInfo, '']);
    const prom = await mesh.stats('prometheus');
    assert.match(prom, /^devicemesh_xds_nacks_total\{node="app1"\} 2$/m);
  });

  it('counts a change that brings a NACKing proxy back to what it holds as SYNCED, without sending anything', async () => {
    const s = mesh.delta();
    s.call.write(deltaRequest({ node: sidecarNode('app1') }));
    s.call.write(deltaRequest({ responseNonce: (await s.response(0)).nonce }));
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    await mesh.apply(modemBinding('m3', { device: 'usb-3', port: 7003 }));
    s.call.write(deltaRequest({ responseNonce: (await s.response(1)).nonce, errorDetail: { code: 3, message: 'no' } }));
    await mesh.waitForState('app1', 'SYNC_STATE_NACKED');
    await mesh.deleteBinding('m3');
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    await sleep(100);
    assert.equal(s.responses.length, 2);
  });

  describe('malformed requests', () => {
    it('ignores an unknown type URL and keeps serving the stream', async () => {
      const s = mesh.delta();
      s.call.write(deltaRequest({ node: sidecarNode('app1'), typeUrl: 'type.googleapis.com/no.such.Type' }));
      await sleep(100);
      assert.equal(s.responses.length, 0);
      s.call.write(deltaRequest({ typeUrl: MAPPING_TYPE_URL }));
      assert.equal((await s.response(0)).typeUrl, MAPPING_TYPE_URL);
    });

    it('ends a stream without node.id, without a known kind, or without a type URL with INVALID_ARGUMENT', async () => {
      const cases: [object, RegExp][] = [
        [deltaRequest({}), /node\.id/],
        [deltaRequest({ node: { id: 'x', cluster: '', metadata: null } }), /node\.metadata\.kind/],
        [deltaRequest({ node: { id: 'gw9', cluster: '', metadata: { fields: { kind: { stringValue: 'agent' } } } } }), /socketPlane/],
        [deltaRequest({ node: sidecarNode('app1'), typeUrl: '' }), /type_url/],
      ];
      for (const [request, why] of cases) {
        const s = mesh.delta();
        s.call.write(request as never);
        const status = await s.status;
        assert.equal(status.code, grpc.status.INVALID_ARGUMENT, why.source);
        assert.match(status.details, why);
      }
    });

    it('takes a garbage error_detail as a NACK with a readable message, and survives', async () => {
      const s = mesh.delta();
      s.call.write(deltaRequest({ node: sidecarNode('app1') }));
      const first = await s.response(0);
      s.call.write(
        deltaRequest({
          responseNonce: first.nonce,
          errorDetail: { code: 13, message: '', details: [{ type_url: 'garbage', value: Buffer.from([0xff, 0x00, 0x13]) }] },
        }),
      );
      const nacked = await mesh.waitForState('app1', 'SYNC_STATE_NACKED');
      assert.equal(nacked.nackMessage, 'rejected with code 13');

      // A huge message is cut to something a listing can show.
      await mesh.apply(modemBinding('m1', { port: 7001, depth: 4 }));
      const second = await s.response(1);
      s.call.write(deltaRequest({ responseNonce: second.nonce, errorDetail: { code: 3, message: 'x'.repeat(100_000) } }));
      const cut = (await mesh.waitForState('app1', 'SYNC_STATE_NACKED')).nackMessage;
      assert.ok(cut.length > 1000 && cut.length <= 1025, `${cut.length} characters`);

      // The server is fine: other streams are served.
      const other = mesh.delta();
      other.call.write(deltaRequest({ node: sidecarNode('app1') }));
      assert.equal((await other.response(0)).resources.length, 2);
      await mesh.call<ListProxiesResponse>('status', 'ListProxies', {});
    });
  });
});
