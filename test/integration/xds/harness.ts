import * as assert from 'node:assert/strict';
import * as http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { canonicalMapping } from '../../../control-plane/canonical';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import { messageType, serviceClient } from '../../../src/proto/load';
import type {
  ApplyResponse,
  Binding,
  DiscoveryRequest,
  DiscoveryResponse,
  ListEndpointsResponse,
  ListProxiesResponse,
  Mapping,
  TypeSyncStatus,
  XdsAny,
  XdsNode,
} from '../../../src/proto/types';
import { AdsClient, type ProxyIdentity } from '../../../src/xds/ads-client';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '../../../src/xds/delta-messages';
import type { AdsProtocol } from '../../../src/xds/protocols';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';
import { binding, endpoint, policy, removeDir, silentLog, tempDir } from '../../unit/control-plane/fixtures';

type Unary = (request: object, callback: (err: grpc.ServiceError | null, response: unknown) => void) => void;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function httpGet(address: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}${path}`, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** A mapping with only an id and a device path, for clients under test. */
export function bareMapping(id: string, devicePath: string): Mapping {
  return canonicalMapping({ id, devicePath, binding: id, workloadId: 'app1', hostId: 'gw1', physicalId: `gw1/${id}` });
}

export function decodeMapping(any: XdsAny): Mapping {
  return messageType('devicemesh.v1.Mapping').decode(any.value).toJSON() as Mapping;
}

export function sidecarNode(id: string): XdsNode {
  return { id, cluster: 'test', metadata: { fields: { kind: { stringValue: 'sidecar', kind: 'stringValue' } } } };
}

export type DeltaCall = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
export type SotwCall = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export { deltaRequest } from '../../helpers/xds-requests';

export function sotwRequest(overrides: Partial<DiscoveryRequest>): DiscoveryRequest {
  return { versionInfo: '', node: null, resourceNames: [], typeUrl: MAPPING_TYPE_URL, responseNonce: '', errorDetail: null, ...overrides };
}

/** A raw stream, independent of the AdsClient under test: every response and the final status recorded. */
export interface RawStream<Req, Res> {
  call: grpc.ClientDuplexStream<Req, Res>;
  responses: Res[];
  headers: Promise<void>;
  status: Promise<grpc.StatusObject>;
  /** The n-th response (0-based), waited for. */
  response(n: number, timeoutMs?: number): Promise<Res>;
}

function record<Req, Res>(call: grpc.ClientDuplexStream<Req, Res>): RawStream<Req, Res> {
  const responses: Res[] = [];
  call.on('data', (r: Res) => responses.push(r));
  call.on('error', () => undefined);
  return {
    call,
    responses,
    headers: new Promise((resolve) => call.on('metadata', () => resolve())),
    status: new Promise((resolve) => call.on('status', resolve)),
    response: (n, timeoutMs) => waitFor(`response #${n}`, () => responses[n], timeoutMs),
  };
}

/** A proxy on the real discovery client, recording every set its handler is given. */
export class TestProxy {
  readonly updates: { version: string; mappings: Mapping[] }[] = [];
  readonly rejections: string[] = [];
  readonly client: AdsClient;
  /** Throw this from the handler (a NACK) while set. */
  reject: ((mappings: Mapping[]) => string | undefined) | undefined;

  constructor(address: string, identity: ProxyIdentity, protocol: AdsProtocol) {
    this.client = new AdsClient({
      address,
      identity,
      protocol,
      log: silentLog,
      handlers: {
        [MAPPING_TYPE_URL]: (resources, version) => {
          const mappings = resources as Mapping[];
          this.updates.push({ version, mappings });
          const reason = this.reject?.(mappings);
          if (reason) throw new Error(reason);
        },
      },
    });
    this.client.on('rejected', (_typeUrl: string, _version: string, message: string) => this.rejections.push(message));
    this.client.start();
  }

  last(): { version: string; mappings: Mapping[] } | undefined {
    return this.updates[this.updates.length - 1];
  }

  stop(): void {
    this.client.stop();
  }
}

/** A control plane on 127.0.0.1 with a temporary data directory, and clients of its services. */
export class Mesh {
  cp!: RunningControlPlane;
  private registry!: grpc.Client;
  private bindings!: grpc.Client;
  private status!: grpc.Client;
  private ads!: grpc.Client;
  private readonly closers: (() => void)[] = [];

  private constructor(readonly dir: string) {}

  static async start(): Promise<Mesh> {
    const mesh = new Mesh(await tempDir('devicemesh-xds-'));
    await mesh.startControlPlane('127.0.0.1:0');
    return mesh;
  }

  async startControlPlane(listen: string): Promise<void> {
    this.cp = await startControlPlane({ listen, admin: '127.0.0.1:0', dataDir: this.dir, log: silentLog, insecure: true });
    const creds = grpc.credentials.createInsecure();
    this.registry = new (serviceClient('devicemesh.v1.Registry'))(this.cp.grpcAddress, creds);
    this.bindings = new (serviceClient('devicemesh.v1.Bindings'))(this.cp.grpcAddress, creds);
    this.status = new (serviceClient('devicemesh.v1.Status'))(this.cp.grpcAddress, creds);
    this.ads = new (serviceClient('envoy.service.discovery.v3.AggregatedDiscoveryService'))(this.cp.grpcAddress, creds);
  }

  /** Stops the control plane only; proxies keep running and reconnect when it is back. */
  async stopControlPlane(): Promise<void> {
    for (const c of [this.registry, this.bindings, this.status, this.ads]) c.close();
    await this.cp.close();
  }

  async close(): Promise<void> {
    for (const close of this.closers.splice(0)) close();
    await this.stopControlPlane();
    await removeDir(this.dir);
  }

  call<T>(service: 'registry' | 'bindings' | 'status', method: string, request: object): Promise<T> {
    const client = this[service];
    const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
    return new Promise((resolve, reject) => fn.call(client, request, (err, res) => (err ? reject(err) : resolve(res as T))));
  }

  apply(...docs: Binding[]): Promise<ApplyResponse> {
    return this.call<ApplyResponse>('bindings', 'Apply', { bindings: docs, policies: [] });
  }

  async deleteBinding(name: string): Promise<void> {
    await this.call('bindings', 'Delete', { kind: 'binding', name });
  }

  proxy(identity: ProxyIdentity, protocol: AdsProtocol): TestProxy {
    const p = new TestProxy(this.cp.grpcAddress, identity, protocol);
    this.closers.push(() => p.stop());
    return p;
  }

  /** Registers gw1's devices and connects gw1's agent, so that bindings on them map. */
  async gatewayUp(protocol: AdsProtocol = 'delta', devices: string[] = ['usb-1']): Promise<TestProxy> {
    for (const [i, d] of devices.entries()) {
      await this.call('registry', 'RegisterEndpoint', { endpoint: endpoint('gw1', d, { path: `/dev/ttyUSB${i}` }) });
    }
    const agent = this.proxy({ id: 'gw1', kind: 'agent', metadata: { socketPlane: '127.0.0.1:15020' } }, protocol);
    await waitFor('gw1 connected', async () => {
      const res = await this.call<ListEndpointsResponse>('registry', 'ListEndpoints', {});
      return res.hosts.find((h) => h.id === 'gw1' && h.state === 'HOST_STATE_CONNECTED');
    });
    return agent;
  }

  async typeStatus(nodeId: string): Promise<TypeSyncStatus | undefined> {
    const res = await this.call<ListProxiesResponse>('status', 'ListProxies', {});
    return res.proxies.find((p) => p.nodeId === nodeId)?.types.find((t) => t.typeUrl === MAPPING_TYPE_URL);
  }

  waitForState(nodeId: string, state: TypeSyncStatus['state']): Promise<TypeSyncStatus> {
    return waitFor(`${nodeId} ${state}`, async () => {
      const t = await this.typeStatus(nodeId);
      return t?.state === state ? t : undefined;
    });
  }

  delta(): RawStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
    const call = (this.ads as unknown as { deltaAggregatedResources(): DeltaCall }).deltaAggregatedResources();
    this.closers.push(() => call.cancel());
    return record(call);
  }

  sotw(): RawStream<DiscoveryRequest, DiscoveryResponse> {
    const call = (this.ads as unknown as { streamAggregatedResources(): SotwCall }).streamAggregatedResources();
    this.closers.push(() => call.cancel());
    return record(call);
  }

  stats(format: 'text' | 'prometheus'): Promise<string> {
    return httpGet(this.cp.adminAddress, format === 'text' ? '/stats' : '/stats/prometheus');
  }
}

/** A binding of workload app1 on one of gw1's devices (by id); each queue depth makes a different mapping. */
export function modemBinding(name: string, options: { device?: string; depth?: number; port?: number } = {}): Binding {
  return binding(name, {
    device: { host: 'gw1', path: '', id: options.device ?? 'usb-1' },
    virtual: { workloadId: '', name: `${name}-dev`, protocol: 'VIRTUAL_PROTOCOL_RAW', listen: `127.0.0.1:${options.port ?? 7001}` },
    policy: options.depth ? policy('', { queueDepth: options.depth }) : null,
  });
}
