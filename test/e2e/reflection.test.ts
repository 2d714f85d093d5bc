import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli, freePort, MeshProcess, waitFor } from '../helpers/processes';
import { PYTHON, STRICT_CLIENT, strictClientMissing } from '../helpers/strict-reflection';


function strictClient(addr: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, [STRICT_CLIENT, addr, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The control plane, started through the CLI, queried the grpcurl way: by an independent Python
 * client that learns every type through reflection and adds each file only after the files it
 * declares as dependencies.
 */
describe('e2e: the control plane through strict server reflection', function () {
  this.timeout(120_000);
  let controlPlane: MeshProcess;
  let addr: string;

  before(async function () {
    const missing = strictClientMissing();
    if (missing) {
      console.log(`    skipped: ${missing} (the README test command installs them)`);
      this.skip();
    }
    addr = `127.0.0.1:${await freePort()}`;
    controlPlane = MeshProcess.start('e2e-reflection-control-plane', [
      'control-plane',
      '--listen', addr,
      '--admin', `127.0.0.1:${await freePort()}`,
      '--data-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'dm-refl-')),
      // The strict (Python grpcio) reflection client calls every method, writes and ADS included, in plaintext.
      '--insecure',
    ]);
    await waitFor('the control plane', () => cli(['get', 'endpoints', '--control-plane', addr, '--insecure']).code === 0, 20_000);
  });

  after(async () => {
    await controlPlane?.stop();
  });

  it('lists the devicemesh.v1 services and Envoy ADS', () => {
    const r = strictClient(addr, 'list');
    assert.equal(r.code, 0, r.stderr);
    for (const s of ['devicemesh.v1.Bindings', 'devicemesh.v1.Registry', 'devicemesh.v1.Status', 'envoy.service.discovery.v3.AggregatedDiscoveryService']) {
      assert.ok(r.stdout.split('\n').includes(s), `${s} not listed:\n${r.stdout}`);
    }
  });

  for (const service of ['devicemesh.v1.Registry', 'devicemesh.v1.Bindings', 'devicemesh.v1.Status', 'envoy.service.discovery.v3.AggregatedDiscoveryService']) {
    it(`describes ${service} with every dependency resolved strictly`, () => {
      const r = strictClient(addr, 'describe', service);
      assert.equal(r.code, 0, r.stderr);
      const described = JSON.parse(r.stdout) as { service: string; methods: { name: string }[] };
      assert.equal(described.service, service);
      assert.ok(described.methods.length > 0);
    });
  }

  it('calls Registry/RegisterEndpoint and Registry/ListEndpoints from reflected types alone', () => {
    const endpoint = JSON.stringify({
      endpoint: { hostId: 'gw-refl', deviceId: '/dev/ttyREFL0', kind: 'DEVICE_KIND_SERIAL', path: '/dev/ttyREFL0', capabilities: ['serial'] },
    });
    const reg = strictClient(addr, 'call', 'devicemesh.v1.Registry/RegisterEndpoint', endpoint);
    assert.equal(reg.code, 0, reg.stderr);
    const list = strictClient(addr, 'call', 'devicemesh.v1.Registry/ListEndpoints', '{}');
    assert.equal(list.code, 0, list.stderr);
    const parsed = JSON.parse(list.stdout) as { endpoints: { id: string; state: string }[] };
    assert.ok(parsed.endpoints.some((e) => e.id === 'gw-refl//dev/ttyREFL0' && e.state === 'ENDPOINT_STATE_PRESENT'), list.stdout);
  });
  it('calls every method of every service, streams and Envoy ADS included, from reflected types alone', () => {
    const call = (method: string, body: object, count?: number): string => {
      const args = ['call', method, JSON.stringify(body), ...(count ? [String(count)] : [])];
      const r = strictClient(addr, ...args);
      assert.equal(r.code, 0, `${method}: ${r.stderr}`);
      return r.stdout;
    };
    const binding = {
      name: 'refl-binding',
      workload: 'refl-app',
      device: { host: 'gw-refl', path: '/dev/ttyREFL1' },
      virtual: { name: 'v0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7999' },
    };
    call('devicemesh.v1.Registry/RegisterEndpoint', { endpoint: { hostId: 'gw-refl', deviceId: '/dev/ttyREFL1', kind: 'DEVICE_KIND_SERIAL', path: '/dev/ttyREFL1' } });
    assert.match(call('devicemesh.v1.Registry/GetEndpoint', { id: 'gw-refl//dev/ttyREFL1' }), /ttyREFL1/);
    assert.match(call('devicemesh.v1.Registry/WatchEndpoints', {}), /TYPE_SNAPSHOT/);
    assert.match(call('devicemesh.v1.Bindings/Apply', { bindings: [binding] }), /binding\/refl-binding created/);
    assert.match(call('devicemesh.v1.Bindings/List', {}), /refl-binding/);
    call('devicemesh.v1.Bindings/ListMappings', { workloadId: 'refl-app' });
    const ads = call('envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', {
      node: { id: 'refl-app', metadata: { kind: 'sidecar' } },
      typeUrl: 'type.googleapis.com/devicemesh.v1.Mapping',
    });
    assert.match(ads, /"typeUrl": ?"type.googleapis.com\/devicemesh.v1.Mapping"/);
    assert.match(ads, /"nonce"/);
    const delta = call('envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources', {
      node: { id: 'refl-app-2', metadata: { kind: 'sidecar' } },
      typeUrl: 'type.googleapis.com/devicemesh.v1.Mapping',
    });
    assert.match(delta, /"nonce"/);
    assert.match(call('devicemesh.v1.Status/ListProxies', {}), /"proxies"|\{\}/);
    call('devicemesh.v1.Bindings/Delete', { kind: 'binding', name: 'refl-binding' });
    call('devicemesh.v1.Registry/DeregisterEndpoint', { id: 'gw-refl//dev/ttyREFL1', markAbsent: false });
    const gone = strictClient(addr, 'call', 'devicemesh.v1.Registry/GetEndpoint', JSON.stringify({ id: 'gw-refl//dev/ttyREFL1' }));
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NOT_FOUND/);
  });
});
