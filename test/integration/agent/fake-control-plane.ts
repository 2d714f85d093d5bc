import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../../../src/proto/load';
import type { DiscoveryRequest, DiscoveryResponse, Mapping, PhysicalEndpoint } from '../../../src/proto/types';
import { packAny } from '../../../src/xds/any';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';

/**
 * Just enough of a control plane for the agent: ADS serving a settable mapping set, and a
 * Registry that records each whole-host report, and what it registered and marked absent.
 */
export class FakeControlPlane {
  readonly reports: PhysicalEndpoint[][] = [];
  /** Every endpoint of every report, in order. */
  readonly registered: PhysicalEndpoint[] = [];
  /** Endpoints a report left out that the one before listed: the control plane marks them absent. */
  readonly deregistered: Array<{ id: string; markAbsent: boolean }> = [];
  readonly requests: DiscoveryRequest[] = [];
  private readonly streams = new Set<grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>>();
  private mappings: object[] = [];
  private version = 0;
  private nonce = 0;

  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {}

  static async start(port = 0, mappings: object[] = []): Promise<FakeControlPlane> {
    const server = new grpc.Server();
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const cp = new FakeControlPlane(server, `127.0.0.1:${bound}`);
    cp.mappings = mappings;
    cp.version = mappings.length > 0 ? 1 : 0;
    server.addService(serviceDefinition('envoy.service.discovery.v3.AggregatedDiscoveryService'), {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => cp.onStream(call),
    });
    server.addService(serviceDefinition('devicemesh.v1.Registry'), {
      ReportHost: (call: grpc.ServerUnaryCall<{ hostId: string; endpoints: PhysicalEndpoint[] }, object>, cb: grpc.sendUnaryData<object>) => {
        cp.report(call.request.endpoints);
        cb(null, { version: String(cp.reports.length), registered: call.request.endpoints.length, markedAbsent: 0 });
      },
    });
    return cp;
  }

  private report(endpoints: PhysicalEndpoint[]): void {
    const before = this.reports.at(-1) ?? [];
    this.reports.push(endpoints);
    this.registered.push(...endpoints);
    for (const e of before) if (!endpoints.some((n) => n.id === e.id)) this.deregistered.push({ id: e.id, markAbsent: true });
  }

  /** Pushes a new version of the mapping set to every connected agent; returns the version. */
  setMappings(mappings: object[]): string {
    this.mappings = mappings;
    this.version += 1;
    for (const stream of this.streams) this.send(stream);
    return String(this.version);
  }

  /** The requests that NACKed, with their error message. */
  nacks(): string[] {
    return this.requests.filter((r) => r.errorDetail).map((r) => r.errorDetail?.message ?? '');
  }

  acked(version: string): boolean {
    return this.requests.some((r) => r.responseNonce !== '' && !r.errorDetail && r.versionInfo === version);
  }

  close(): Promise<void> {
    this.server.forceShutdown();
    return Promise.resolve();
  }

  private onStream(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    this.streams.add(call);
    call.on('data', (req: DiscoveryRequest) => {
      this.requests.push(req);
      if (req.typeUrl === MAPPING_TYPE_URL && req.responseNonce === '') this.send(call);
    });
    call.on('error', () => this.streams.delete(call));
    call.on('end', () => {
      this.streams.delete(call);
      call.end();
    });
  }

  private send(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    this.nonce += 1;
    call.write({
      versionInfo: String(this.version),
      resources: this.mappings.map((m) => packAny(MAPPING_TYPE_URL, m)),
      typeUrl: MAPPING_TYPE_URL,
      nonce: String(this.nonce),
    });
  }
}

/** A complete Mapping with test defaults. */
export function mapping(fields: Partial<Mapping> & Pick<Mapping, 'id' | 'devicePath'>): Mapping {
  return {
    binding: fields.id,
    workloadId: 'app1',
    virtual: null,
    physicalId: `gw1/${fields.devicePath}`,
    hostId: 'gw1',
    kind: 'DEVICE_KIND_SERIAL',
    settings: {},
    agentAddress: '',
    policy: null,
    serial: { baudRate: 9600, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' },
    version: '1',
    ...fields,
    adaptiveLimit: fields.adaptiveLimit ?? null,
    roaming: fields.roaming ?? false,
  };
}
