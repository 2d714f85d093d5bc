import * as assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { ListProxiesResponse } from '../../../src/proto/types';
import { decodeMapping, deltaRequest, Mesh, modemBinding, sidecarNode, sleep, sotwRequest, waitFor } from './harness';

describe('discovery push control and metrics', function () {
  let mesh: Mesh;
  beforeEach(async () => {
    mesh = await Mesh.start();
    await mesh.gatewayUp('delta');
    await mesh.apply(modemBinding('m1', { depth: 1 }));
  });
  afterEach(async () => {
    await mesh.close();
  });

  it('keeps one response in flight and only the latest state for a proxy that does not answer', async () => {
    const delta = mesh.delta();
    delta.call.write(deltaRequest({ node: sidecarNode('app1') }));
    const sotw = mesh.sotw();
    sotw.call.write(sotwRequest({ node: sidecarNode('app1') }));
    const firstDelta = await delta.response(0);
    const firstSotw = await sotw.response(0);
    for (let depth = 2; depth <= 50; depth++) await mesh.apply(modemBinding('m1', { depth }));
    await sleep(300);
    assert.equal(delta.responses.length, 1, 'nothing more while the first response is unanswered');
    assert.equal(sotw.responses.length, 1);

    delta.call.write(deltaRequest({ responseNonce: firstDelta.nonce }));
    sotw.call.write(sotwRequest({ versionInfo: firstSotw.versionInfo, responseNonce: firstSotw.nonce }));
    const latestDelta = await delta.response(1);
    const latestSotw = await sotw.response(1);
    assert.equal(decodeMapping(latestDelta.resources[0]!.resource!).policy?.queueDepth, 50);
    assert.equal(decodeMapping(latestSotw.resources[0]!).policy?.queueDepth, 50);
    await sleep(100);
    assert.deepEqual([delta.responses.length, sotw.responses.length], [2, 2], 'one response carries the whole burst');
  });

  it('pushes a change to hundreds of streams in batches, still answering other calls', async function () {
    this.timeout(60_000);
    const streams = Array.from({ length: 250 }, (_, i) => {
      const s = mesh.delta();
      s.call.write(deltaRequest({ node: sidecarNode(i % 2 ? 'app1' : 'app2') }));
      return s;
    });
    for (const s of streams) s.call.write(deltaRequest({ responseNonce: (await s.response(0)).nonce }));
    await waitFor('all SYNCED', async () => {
      const res = await mesh.call<ListProxiesResponse>('status', 'ListProxies', {});
      return res.proxies.filter((p) => p.types[0]?.state === 'SYNC_STATE_SYNCED').length >= 251 ? true : undefined;
    }, 20_000);

    await mesh.apply(modemBinding('m1', { depth: 77 }));
    const started = performance.now();
    const listed = await mesh.call<ListProxiesResponse>('status', 'ListProxies', {});
    assert.ok(listed.proxies.length >= 251);
    assert.ok(performance.now() - started < 5000);
    const app1 = streams.filter((_, i) => i % 2);
    await waitFor('every app1 stream updated', () => (app1.every((s) => s.responses.length === 2) ? true : undefined), 20_000);
    for (const s of app1) assert.equal(decodeMapping(s.responses[1]!.resources[0]!.resource!).policy?.queueDepth, 77);
    await sleep(100);
    assert.ok(streams.filter((_, i) => i % 2 === 0).every((s) => s.responses.length === 1), 'app2 has no mappings: nothing sent');
  });

  it('measures push latency, queue time and convergence, and counts pushes, triggers, ACKs and NACKs', async () => {
    const sidecar = mesh.proxy({ id: 'app1', kind: 'sidecar' }, 'delta');
    await waitFor('first set', () => sidecar.last());
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    await mesh.apply(modemBinding('m1', { depth: 2 }));
    await waitFor('update', () => (sidecar.updates.length === 2 ? true : undefined));
    await mesh.waitForState('app1', 'SYNC_STATE_SYNCED');
    sidecar.reject = () => 'refused for the metrics';
    await mesh.apply(modemBinding('m1', { depth: 3 }));
    await mesh.waitForState('app1', 'SYNC_STATE_NACKED');
    const sotw = mesh.sotw();
    sotw.call.write(sotwRequest({ node: sidecarNode('app2') }));
    await sotw.response(0);

    const prom = await mesh.stats('prometheus');
    assert.match(prom, /^# TYPE devicemesh_xds_push_latency_seconds histogram$/m);
    assert.match(prom, /^# HELP devicemesh_xds_convergence_seconds .+$/m);
    for (const name of ['xds_push_latency_seconds', 'xds_queue_seconds', 'xds_convergence_seconds']) {
      const count = Number(new RegExp(`^devicemesh_${name}_count (\\d+)$`, 'm').exec(prom)?.[1]);
      assert.ok(count >= 1, `${name} observed`);
      const inf = Number(new RegExp(`^devicemesh_${name}_bucket\\{le="\\+Inf"\\} (\\d+)$`, 'm').exec(prom)?.[1]);
      assert.equal(inf, count, `${name}: the +Inf bucket holds every observation`);
      assert.match(prom, new RegExp(`^devicemesh_${name}_bucket\\{le="0.001"\\} \\d+$`, 'm'));
      assert.match(prom, new RegExp(`^devicemesh_${name}_sum [0-9.e-]+$`, 'm'));
    }
    const counter = (series: string): number => Number(new RegExp(`^devicemesh_${series} (\\d+)$`, 'm').exec(prom)?.[1] ?? 0);
    assert.ok(counter('xds_pushes_total{type="type.googleapis.com/devicemesh.v1.Mapping",protocol="delta"}') >= 4);
    assert.equal(counter('xds_pushes_total{type="type.googleapis.com/devicemesh.v1.Mapping",protocol="sotw"}'), 1);
    assert.ok(counter('xds_push_triggers_total{reason="connect"}') >= 3, 'agent, sidecar and the raw stream');
    assert.ok(counter('xds_push_triggers_total{reason="binding"}') >= 2);
    assert.ok(counter('xds_acks_total{type="type.googleapis.com/devicemesh.v1.Mapping",protocol="delta"}') >= 3);
    assert.equal(counter('xds_nacks_total{node="app1"}'), 1);

    const text = await mesh.stats('text');
    assert.match(text, /^xds_convergence_seconds: P50\([0-9.e-]+\) P99\([0-9.e-]+\) count=\d+ sum=[0-9.e-]+$/m);
    assert.match(text, /^xds_nacks\{node=app1\}: 1$/m);
    assert.match(text, /^connected_proxies: 3$/m);
  });
});
