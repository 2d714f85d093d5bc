import * as assert from 'node:assert/strict';
import type { AdsProtocol } from '../../../src/xds/protocols';
import type { Mapping } from '../../../src/proto/types';
import { Mesh, modemBinding, sleep, waitFor } from './harness';

for (const protocol of ['delta', 'sotw'] as const satisfies readonly AdsProtocol[]) {
  describe(`xDS over the real client and control plane (${protocol})`, function () {
    let mesh: Mesh;
    beforeEach(async () => {
      mesh = await Mesh.start();
    });
    afterEach(async () => {
      await mesh.close();
    });

    it('delivers a subscription, an update and a removal as the whole current set', async () => {
      await mesh.gatewayUp(protocol, ['usb-1', 'usb-2']);
      await mesh.apply(modemBinding('m1', { port: 7001 }), modemBinding('m2', { device: 'usb-2', port: 7002 }));
      const sidecar = mesh.proxy({ id: 'app1', kind: 'sidecar' }, protocol);
      const first = await waitFor('first set', () => sidecar.last());
      assert.deepEqual(first.mappings.map((m) => m.binding), ['m1', 'm2']);
      assert.equal(sidecar.client.protocolInUse(), protocol);
      await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');

      await mesh.apply(modemBinding('m2', { device: 'usb-2', port: 7002, depth: 5 }));
      const updated = await waitFor('update', () => (sidecar.updates.length === 2 ? sidecar.last() : undefined));
      assert.deepEqual(updated.mappings.map((m) => [m.binding, m.policy?.queueDepth]), [['m1', 64], ['m2', 5]]);
      assert.ok(Number(updated.version) > Number(first.version));

      await mesh.deleteBinding('m1');
      const removed = await waitFor('removal', () => (sidecar.updates.length === 3 ? sidecar.last() : undefined));
      assert.deepEqual(removed.mappings.map((m) => m.binding), ['m2']);
      await mesh.deleteBinding('m2');
      await waitFor('empty set', () => (sidecar.last()?.mappings.length === 0 ? true : undefined));
      const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
      assert.equal(synced.ackedVersion, sidecar.last()?.version);
      assert.deepEqual(sidecar.client.versions(), { 'type.googleapis.com/devicemesh.v1.Mapping': sidecar.last()?.version });
    });

    it('records a NACK with its message, resends nothing, and ends SYNCED on a corrected version', async () => {
      await mesh.gatewayUp(protocol);
      await mesh.apply(modemBinding('m1', { depth: 13 }));
      const sidecar = mesh.proxy({ id: 'app1', kind: 'sidecar' }, protocol);
      sidecar.reject = (mappings) => (mappings.some((m) => m.policy?.queueDepth === 13) ? 'queue depth 13 is unlucky' : undefined);
      const nacked = await mesh.waitForState('app1', 'SYNC_STATE_NACKED');
      assert.equal(nacked.nackMessage, 'queue depth 13 is unlucky');
      assert.equal(nacked.nackedVersion, sidecar.updates[0]?.version);
      assert.equal(nacked.ackedVersion, '');
      await sleep(300);
      assert.equal(sidecar.updates.length, 1, 'the rejected version is not sent again');
      assert.deepEqual(sidecar.client.versions(), {}, 'nothing applied yet');

      await mesh.apply(modemBinding('m1', { depth: 14 }));
      const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
      assert.equal(synced.nackMessage, '');
      assert.equal(sidecar.updates.length, 2);
      assert.equal(sidecar.last()?.mappings[0]?.policy?.queueDepth, 14);
      assert.equal(synced.ackedVersion, sidecar.last()?.version);
    });

    it('reconnects after a control-plane restart with what it holds', async () => {
      const agent = await mesh.gatewayUp(protocol);
      await mesh.apply(modemBinding('m1'));
      const sidecar = mesh.proxy({ id: 'app1', kind: 'sidecar' }, protocol);
      await waitFor('first set', () => sidecar.last());
      await waitFor('agent set', () => (agent.last()?.mappings.length === 1 ? true : undefined));
      const before = { sidecar: sidecar.updates.length, agent: agent.updates.length };
      let reconnects = 0;
      sidecar.client.on('connected', () => reconnects++);

      const address = mesh.cp.grpcAddress;
      await mesh.stopControlPlane();
      await mesh.startControlPlane(address);
      await waitFor('sidecar reconnected', () => (reconnects > 0 ? true : undefined), 15_000);
      const synced = await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
      await mesh.waitForState('gw1', 'SYNC_STATE_SYNCED');
      await sleep(200);
      if (protocol === 'delta') {
        // Every resource it declared is current: nothing at all is sent.
        assert.deepEqual({ sidecar: sidecar.updates.length, agent: agent.updates.length }, before);
      } else {
        // The state of the world is resent, with the same content.
        assert.equal(sidecar.updates.length, before.sidecar + 1);
        assert.deepEqual(sidecar.last()?.mappings, sidecar.updates[0]?.mappings);
        assert.equal(synced.ackedVersion, sidecar.last()?.version);
      }

      await mesh.apply(modemBinding('m1', { depth: 3 }));
      await waitFor('a change after the restart', () => (sidecar.last()?.mappings[0]?.policy?.queueDepth === 3 ? true : undefined));
    });

    it('coalesces a burst of 1,000 changes into a few pushes per proxy', async function () {
      this.timeout(120_000);
      const agent = await mesh.gatewayUp(protocol);
      await mesh.apply(modemBinding('m1', { depth: 1 }));
      const sidecar = mesh.proxy({ id: 'app1', kind: 'sidecar' }, protocol);
      await waitFor('first set', () => sidecar.last());
      await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
      const start = { sidecar: sidecar.updates.length, agent: agent.updates.length };
      const pushMetric = `xds_pushes_total{type="type.googleapis.com/devicemesh.v1.Mapping",protocol="${protocol}"}`;
      const pushesCounted = async (): Promise<number> => {
        const line = (await mesh.stats('prometheus')).split('\n').find((l) => l.startsWith(`devicemesh_${pushMetric} `));
        return Number(line?.split(' ')[1] ?? '0');
      };
      const countedBefore = await pushesCounted();

      // Half one after another, half all at once.
      for (let depth = 2; depth <= 501; depth++) await mesh.apply(modemBinding('m1', { depth }));
      await Promise.all(Array.from({ length: 500 }, (_, i) => mesh.apply(modemBinding('m1', { depth: 502 + i }))));
      // Concurrent calls reach the control plane in no set order: the last one it applied wins.
      const listed = await mesh.call<{ mappings: Mapping[] }>('bindings', 'ListMappings', {});
      const final = listed.mappings[0]?.policy?.queueDepth;
      assert.ok(final !== undefined && final >= 502, `the control plane holds depth ${final}`);
      await waitFor('the last change', () => (sidecar.last()?.mappings[0]?.policy?.queueDepth === final ? true : undefined), 10_000);
      await waitFor('the agent too', () => (agent.last()?.mappings[0]?.policy?.queueDepth === final ? true : undefined), 10_000);
      await sleep(100);
      const pushes = { sidecar: sidecar.updates.length - start.sidecar, agent: agent.updates.length - start.agent };
      assert.ok(pushes.sidecar >= 1 && pushes.sidecar <= 30, `sidecar got ${pushes.sidecar} pushes`);
      assert.ok(pushes.agent >= 1 && pushes.agent <= 30, `agent got ${pushes.agent} pushes`);
      // The control plane's own count agrees: a few dozen pushes for the two proxies, not 2,000.
      const counted = (await pushesCounted()) - countedBefore;
      assert.equal(counted, pushes.sidecar + pushes.agent, `xds_pushes counted ${counted}`);
      await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    });
  });
}
