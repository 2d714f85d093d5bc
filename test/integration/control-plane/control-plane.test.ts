import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import { messageType, serviceClient } from '../../../src/proto/load';
import type {
  ApplyResponse,
  Binding,
  DiscoveryRequest,
  DiscoveryResponse,
  EndpointEvent,
  ListBindingsResponse,
  ListEndpointsResponse,
  ListMappingsResponse,
  ListProxiesResponse,
  Mapping,
  PhysicalEndpoint,
  TypeSyncStatus,
} from '../../../src/proto/types';
import type { ProxyIdentity } from '../../../src/xds/ads-client';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';
import { binding, endpoint, policy, removeDir, silentLog, tempDir } from '../../unit/control-plane/fixtures';
import { TestProxy } from '../xds/harness';

type Unary = (request: object, callback: (err: grpc.ServiceError | null, response: unknown) => void) => void;

function call<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
  return new Promise((resolve, reject) => fn.call(client, request, (err, res) => (err ? reject(err) : resolve(res as T))));
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function getJson(address: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}${path}`, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
}

describe('control plane over gRPC', function () {
  let dir: string;
  let cp: RunningControlPlane;
  let registry: grpc.Client;
  let bindings: grpc.Client;
  let status: grpc.Client;
  const proxies: TestProxy[] = [];

  const start = async (): Promise<void> => {
    cp = await startControlPlane({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', dataDir: dir, log: silentLog, insecure: true });
    const creds = grpc.credentials.createInsecure();
    registry = new (serviceClient('devicemesh.v1.Registry'))(cp.grpcAddress, creds);
    bindings = new (serviceClient('devicemesh.v1.Bindings'))(cp.grpcAddress, creds);
    status = new (serviceClient('devicemesh.v1.Status'))(cp.grpcAddress, creds);
  };
  const stop = async (): Promise<void> => {
    for (const p of proxies.splice(0)) p.stop();
    for (const c of [registry, bindings, status]) c.close();
    await cp.close();
  };
  const proxy = (identity: ProxyIdentity, reject?: string): TestProxy => {
    const p = new TestProxy(cp.grpcAddress, identity, 'delta');
    if (reject !== undefined) p.reject = () => reject;
    proxies.push(p);
    return p;
  };
  const typeStatus = async (nodeId: string): Promise<TypeSyncStatus | undefined> => {
    const res = await call<ListProxiesResponse>(status, 'ListProxies', {});
    return res.proxies.find((p) => p.nodeId === nodeId)?.types.find((t) => t.typeUrl === MAPPING_TYPE_URL);
  };
  /** Registers gw1's device and connects gw1's agent, so that bindings on it can map. */
  const gatewayUp = async (): Promise<TestProxy> => {
    await call<PhysicalEndpoint>(registry, 'RegisterEndpoint', { endpoint: endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' }) });
    const agent = proxy({ id: 'gw1', kind: 'agent', metadata: { socketPlane: '127.0.0.1:15020' } });
    await waitFor('gw1 connected', async () => {
      const res = await call<ListEndpointsResponse>(registry, 'ListEndpoints', {});
      return res.hosts.find((h) => h.id === 'gw1' && h.state === 'HOST_STATE_CONNECTED');
    });
    return agent;
  };
  const apply = (...docs: Binding[]): Promise<ApplyResponse> => call<ApplyResponse>(bindings, 'Apply', { bindings: docs, policies: [] });

  beforeEach(async () => {
    dir = await tempDir();
    await start();
  });
  afterEach(async () => {
    await stop();
    await removeDir(dir);
  });

  it('pushes a binding’s mapping to its sidecar and agent, records the ACK, and withdraws it on delete', async function () {
    const agent = await gatewayUp();
    const applied = await apply(binding('app1-modem'));
    assert.deepEqual(applied.results, ['binding/app1-modem created']);

    const sidecar = proxy({ id: 'app1', kind: 'sidecar' });
    const update = await waitFor('sidecar update', () => sidecar.last());
    assert.equal(update.mappings.length, 1);
    const m = update.mappings[0] as Mapping;
    assert.equal(m.binding, 'app1-modem');
    assert.equal(m.physicalId, 'gw1/usb-1');
    assert.equal(m.agentAddress, '127.0.0.1:15020');
    assert.equal(m.virtual?.workloadId, 'app1');
    const synced = await waitFor('sidecar SYNCED', async () => {
      const t = await typeStatus('app1');
      return t?.state === 'SYNC_STATE_SYNCED' ? t : undefined;
    });
    assert.equal(synced.ackedVersion, update.version);
    await waitFor('agent has the mapping', () => (agent.last()?.mappings.length === 1 ? true : undefined));
    await sleep(100);
    assert.equal(sidecar.updates.length, 1, 'exactly one update for one change');

    await call(bindings, 'Delete', { kind: 'binding', name: 'app1-modem' });
    const empty = await waitFor('sidecar emptied', () => (sidecar.last()?.mappings.length === 0 ? sidecar.last() : undefined));
    assert.ok(Number(empty.version) > Number(update.version));
    await waitFor('agent emptied', () => (agent.last()?.mappings.length === 0 ? true : undefined));
    await assert.rejects(call(bindings, 'Delete', { kind: 'binding', name: 'app1-modem' }), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
  });

  it('records a NACK with its message and does not resend the rejected version', async function () {
    await gatewayUp();
    await apply(binding('app1-modem'));
    const sidecar = proxy({ id: 'app1', kind: 'sidecar' }, 'cannot listen on 127.0.0.1:7010: address in use');
    const nacked = await waitFor('NACKED', async () => {
      const t = await typeStatus('app1');
      return t?.state === 'SYNC_STATE_NACKED' ? t : undefined;
    });
    assert.equal(nacked.nackMessage, 'cannot listen on 127.0.0.1:7010: address in use');
    assert.equal(nacked.nackedVersion, sidecar.updates[0]?.version);
    await sleep(300);
    assert.equal(sidecar.updates.length, 1, 'no resend loop');

    const dump = (await getJson(cp.adminAddress, '/config_dump')) as { proxies: { nodeId: string; types: TypeSyncStatus[] }[]; mappings: Mapping[] };
    const dumped = dump.proxies.find((p) => p.nodeId === 'app1')?.types[0];
    assert.equal(dumped?.state, 'SYNC_STATE_NACKED');
    assert.equal(dumped?.nackMessage, 'cannot listen on 127.0.0.1:7010: address in use');
    assert.equal(dump.mappings.length, 1);

    // The next change is sent.
    await apply(binding('app1-modem', { serial: { baudRate: 9600, dataBits: 0, parity: 'PARITY_UNSPECIFIED', stopBits: 'STOP_BITS_UNSPECIFIED', flowControl: 'FLOW_CONTROL_UNSPECIFIED' } }));
    await waitFor('second update', () => (sidecar.updates.length === 2 ? true : undefined));
  });

  it('keeps bindings, mapping ids and a growing version across a restart', async () => {
    await gatewayUp();
    await apply(binding('app1-modem'));
    const before = await call<ListMappingsResponse>(bindings, 'ListMappings', { workloadId: 'app1' });
    assert.equal(before.mappings.length, 1);
    await stop();
    await start();
    const after = await call<ListMappingsResponse>(bindings, 'ListMappings', {});
    assert.deepEqual(after.mappings.map((m) => m.id), before.mappings.map((m) => m.id));
    assert.equal(after.mappings[0]?.version, before.mappings[0]?.version, 'unchanged content keeps its version');
    assert.ok(Number(after.version) > Number(before.version), `${after.version} > ${before.version}`);
    const list = await call<ListBindingsResponse>(bindings, 'List', {});
    assert.deepEqual(list.bindings.map((s) => [s.binding?.name, s.phase]), [['app1-modem', 'BINDING_PHASE_MAPPED']]);
    const endpoints = await call<ListEndpointsResponse>(registry, 'ListEndpoints', {});
    assert.equal(endpoints.endpoints[0]?.state, 'ENDPOINT_STATE_UNKNOWN');
    assert.equal(endpoints.hosts[0]?.state, 'HOST_STATE_DISCONNECTED');
  });

  it('answers an invalid Apply with INVALID_ARGUMENT naming the field, storing nothing', async () => {
    const bad = binding('bad', { virtual: { workloadId: '', name: 'm0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: 'nowhere' } });
    await assert.rejects(apply(binding('good'), bad), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /^binding\/bad: virtual\.listen: /);
      return true;
    });
    const list = await call<ListBindingsResponse>(bindings, 'List', {});
    assert.deepEqual(list.bindings, []);
  });

  it('serves the register: get, watch, deregister', async () => {
    await assert.rejects(call(registry, 'GetEndpoint', { id: 'gw1/nope' }), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
    await assert.rejects(
      call(registry, 'RegisterEndpoint', { endpoint: endpoint('gw1', '') }),
      (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /deviceId/.test(err.details),
    );
    await call(registry, 'RegisterEndpoint', { endpoint: endpoint('gw1', 'usb-1') });
    const events: EndpointEvent[] = [];
    const watch = (registry as unknown as { watchEndpoints(req: object): grpc.ClientReadableStream<EndpointEvent> }).watchEndpoints({ hostId: 'gw1' });
    watch.on('data', (e: EndpointEvent) => events.push(e));
    watch.on('error', () => undefined);
    await waitFor('snapshot', () => (events.length === 1 ? true : undefined));
    await call(registry, 'RegisterEndpoint', { endpoint: endpoint('gw2', 'usb-9') });
    await call(registry, 'DeregisterEndpoint', { id: 'gw1/usb-1', markAbsent: true });
    await waitFor('absent event', () => (events.length === 2 ? true : undefined));
    watch.cancel();
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.endpoint?.id} ${e.endpoint?.state}`),
      ['TYPE_SNAPSHOT gw1/usb-1 ENDPOINT_STATE_PRESENT', 'TYPE_UPSERTED gw1/usb-1 ENDPOINT_STATE_ABSENT'],
    );
    const got = await call<PhysicalEndpoint>(registry, 'GetEndpoint', { id: 'gw1/usb-1' });
    assert.equal(got.state, 'ENDPOINT_STATE_ABSENT');
  });

  describe('raw discovery streams', () => {
    type Stream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
    const request = (overrides: Partial<DiscoveryRequest>): DiscoveryRequest => ({
      versionInfo: '',
      node: null,
      resourceNames: [],
      typeUrl: MAPPING_TYPE_URL,
      responseNonce: '',
      errorDetail: null,
      ...overrides,
    });
    const sidecarNode = (id: string): DiscoveryRequest['node'] => ({
      id,
      cluster: 'test',
      metadata: { fields: { kind: { stringValue: 'sidecar', kind: 'stringValue' } } },
    });
    let ads: grpc.Client;
    beforeEach(() => {
      ads = new (serviceClient('envoy.service.discovery.v3.AggregatedDiscoveryService'))(cp.grpcAddress, grpc.credentials.createInsecure());
    });
    afterEach(() => ads.close());
    const open = (): { stream: Stream; responses: DiscoveryResponse[]; ended: Promise<grpc.StatusObject> } => {
      const stream = (ads as unknown as { streamAggregatedResources(): Stream }).streamAggregatedResources();
      const responses: DiscoveryResponse[] = [];
      stream.on('data', (r: DiscoveryResponse) => responses.push(r));
      const ended = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      stream.on('error', () => undefined);
      return { stream, responses, ended };
    };

    it('ignores a request with a stale nonce, garbage error details and unknown type URLs', async () => {
      const { stream, responses } = open();
      stream.write(request({ node: sidecarNode('app9') }));
      await waitFor('first response', () => responses[0]);
      const first = responses[0] as DiscoveryResponse;
      assert.equal(first.typeUrl, MAPPING_TYPE_URL);
      assert.deepEqual(first.resources, []);
      assert.ok(first.nonce);

      stream.write(request({ responseNonce: 'not-a-nonce-we-sent', errorDetail: { code: 3, message: 'stale complaint' } }));
      stream.write(request({ typeUrl: 'type.googleapis.com/no.such.Type', responseNonce: first.nonce }));
      stream.write(
        request({
          typeUrl: 'type.googleapis.com/no.such.Type',
          errorDetail: { code: 13, message: 'x', details: [{ type_url: 'garbage', value: Buffer.from([0xff, 0x00, 0x13]) }] },
        }),
      );
      await sleep(100);
      const t = await typeStatus('app9');
      assert.equal(t?.state, 'SYNC_STATE_STALE', 'the stale NACK was ignored');
      assert.equal(t?.nackMessage, '');

      stream.write(request({ versionInfo: first.versionInfo, responseNonce: first.nonce }));
      await waitFor('ACK recorded', async () => ((await typeStatus('app9'))?.state === 'SYNC_STATE_SYNCED' ? true : undefined));
      assert.equal(responses.length, 1);
      stream.end();
    });

    it('sends typed Mapping resources, records a NACK and sends nothing until the next change', async () => {
      await gatewayUp();
      await apply(binding('app1-modem'));
      const { stream, responses } = open();
      stream.write(request({ node: sidecarNode('app1') }));
      const first = await waitFor('first response', () => responses[0]);
      // As grpc-js decodes it on the proxy's side: proto-loader's Any keeps the field name type_url.
      const any = first.resources[0] as unknown as { type_url: string; value: Buffer };
      assert.equal(any.type_url, MAPPING_TYPE_URL);
      const mapping = messageType('devicemesh.v1.Mapping').decode(any.value).toJSON() as Mapping;
      assert.equal(mapping.binding, 'app1-modem');
      assert.equal(mapping.version, first.versionInfo);

      stream.write(request({ responseNonce: first.nonce, errorDetail: { code: 3, message: 'port 7010 busy' } }));
      const nacked = await waitFor('NACKED', async () => {
        const t = await typeStatus('app1');
        return t?.state === 'SYNC_STATE_NACKED' ? t : undefined;
      });
      assert.deepEqual([nacked.nackedVersion, nacked.nackMessage, nacked.ackedVersion], [first.versionInfo, 'port 7010 busy', '']);
      await sleep(300);
      assert.equal(responses.length, 1, 'the rejected version is not sent again');

      await apply(binding('app1-modem', { policy: policy('', { queueDepth: 8 }) }));
      const second = await waitFor('next change', () => responses[1]);
      assert.ok(Number(second.versionInfo) > Number(first.versionInfo));
      assert.notEqual(second.nonce, first.nonce);

      stream.write(request({ versionInfo: second.versionInfo, responseNonce: second.nonce }));
      await call(bindings, 'Delete', { kind: 'binding', name: 'app1-modem' });
      const withdrawn = await waitFor('withdrawal', () => responses[2]);
      assert.deepEqual(withdrawn.resources, []);
      stream.end();
    });

    it('keeps only the latest snapshot for a proxy that has not answered yet', async () => {
      await gatewayUp();
      await apply(binding('app1-modem'));
      const { stream, responses } = open();
      stream.write(request({ node: sidecarNode('app1') }));
      const first = await waitFor('first response', () => responses[0]);
      for (const depth of [2, 3, 4, 5, 6]) await apply(binding('app1-modem', { policy: policy('', { queueDepth: depth }) }));
      await sleep(100);
      assert.equal(responses.length, 1, 'nothing more while the first response is unanswered');
      stream.write(request({ versionInfo: first.versionInfo, responseNonce: first.nonce }));
      const latest = await waitFor('latest', () => responses[1]);
      const any = latest.resources[0] as unknown as { type_url: string; value: Buffer };
      assert.equal((messageType('devicemesh.v1.Mapping').decode(any.value).toJSON() as Mapping).policy?.queueDepth, 6);
      await sleep(100);
      assert.equal(responses.length, 2, 'one response carries the whole burst');
      stream.end();
    });

    it('ends a stream whose first request does not say who it is, on either protocol', async () => {
      const anonymous = open();
      anonymous.stream.write(request({}));
      const status1 = await anonymous.ended;
      assert.equal(status1.code, grpc.status.INVALID_ARGUMENT);
      assert.match(status1.details, /node\.id/);

      const noKind = open();
      noKind.stream.write(request({ node: { id: 'x', cluster: '', metadata: null } }));
      assert.match((await noKind.ended).details, /node\.metadata\.kind/);

      const delta = (ads as unknown as { deltaAggregatedResources(): grpc.ClientDuplexStream<object, unknown> }).deltaAggregatedResources();
      delta.on('error', () => undefined);
      const status2 = new Promise<grpc.StatusObject>((resolve) => delta.on('status', resolve));
      delta.write({ typeUrl: MAPPING_TYPE_URL, resourceNamesSubscribe: ['*'] });
      assert.equal((await status2).code, grpc.status.INVALID_ARGUMENT);
      assert.match((await status2).details, /node\.id/);

      // The server is still fine.
      await call<ListProxiesResponse>(status, 'ListProxies', {});
    });
  });
});
