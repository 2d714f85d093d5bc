import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { serviceDefinition } from '../../../src/proto/load';
import type { DiscoveryRequest, DiscoveryResponse, Mapping } from '../../../src/proto/types';
import { packAny } from '../../../src/xds/any';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

/** One request a proxy sent, classified the way a control plane reads it. */
export interface RecordedRequest {
  kind: 'subscribe' | 'ack' | 'nack';
  nodeId: string;
  typeUrl: string;
  version: string;
  nonce: string;
  /** The NACK's error_detail message. */
  message: string;
}

/**
 * The smallest ADS server a sidecar can be tested against: state of the world for mappings only,
 * every stream gets the current set on subscribe and on every push; records ACKs and NACKs.
 */
export class FakeAdsServer extends EventEmitter {
  readonly requests: RecordedRequest[] = [];
  private readonly calls = new Set<AdsCall>();
  private state: { version: string; mappings: Mapping[] } | undefined;
  private nonce = 0;

  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {
    super();
  }

  /** Listens on 127.0.0.1:`port` (0 = any free port). */
  static async start(port = 0): Promise<FakeAdsServer> {
    const server = new grpc.Server();
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const ads = new FakeAdsServer(server, `127.0.0.1:${bound}`);
    server.addService(serviceDefinition('envoy.service.discovery.v3.AggregatedDiscoveryService'), {
      streamAggregatedResources: (call: AdsCall) => ads.onStream(call),
      deltaAggregatedResources: (call: AdsCall) => call.end(),
    });
    return ads;
  }

  get streamCount(): number {
    return this.calls.size;
  }

  /** Makes `mappings` the current set at `version` and sends it to every connected proxy. */
  push(version: string, mappings: Mapping[]): void {
    this.state = { version, mappings };
    for (const call of this.calls) this.send(call);
  }

  /** Resolves with the first recorded request (past or future) that matches. */
  waitFor(match: (r: RecordedRequest) => boolean, ms = 10_000): Promise<RecordedRequest> {
    const found = this.requests.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('request', onRequest);
        reject(new Error(`no matching discovery request within ${ms} ms; got ${JSON.stringify(this.requests)}`));
      }, ms);
      const onRequest = (r: RecordedRequest): void => {
        if (!match(r)) return;
        clearTimeout(timer);
        this.off('request', onRequest);
        resolve(r);
      };
      this.on('request', onRequest);
    });
  }

  waitForAck(version: string, ms?: number): Promise<RecordedRequest> {
    return this.waitFor((r) => r.kind === 'ack' && r.version === version, ms);
  }

  waitForNack(ms?: number): Promise<RecordedRequest> {
    return this.waitFor((r) => r.kind === 'nack', ms);
  }

  /** Stops at once, cutting every stream, as a crashed control plane would. */
  stop(): void {
    for (const call of this.calls) call.destroy();
    this.calls.clear();
    this.server.forceShutdown();
  }

  private onStream(call: AdsCall): void {
    this.calls.add(call);
    let nodeId = '';
    call.on('data', (req: DiscoveryRequest) => {
      if (req.node?.id) nodeId = req.node.id;
      const kind = req.responseNonce === '' ? 'subscribe' : req.errorDetail ? 'nack' : 'ack';
      const record: RecordedRequest = {
        kind,
        nodeId,
        typeUrl: req.typeUrl,
        version: req.versionInfo,
        nonce: req.responseNonce,
        message: req.errorDetail?.message ?? '',
      };
      this.requests.push(record);
      this.emit('request', record);
      if (kind === 'subscribe' && req.typeUrl === MAPPING_TYPE_URL) this.send(call);
    });
    call.on('error', () => this.calls.delete(call));
    call.on('end', () => {
      this.calls.delete(call);
      call.end();
    });
  }

  private send(call: AdsCall): void {
    if (!this.state) return;
    this.nonce++;
    call.write({
      versionInfo: this.state.version,
      resources: this.state.mappings.map((m) => packAny(MAPPING_TYPE_URL, m)),
      typeUrl: MAPPING_TYPE_URL,
      nonce: String(this.nonce),
    });
  }
}
