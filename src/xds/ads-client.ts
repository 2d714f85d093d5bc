import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../errors';
import type { Logger } from '../log';
import { serviceClient } from '../proto/load';
import type { DiscoveryRequest, DiscoveryResponse, XdsNode } from '../proto/types';
import { Backoff } from '../util/backoff';
import { unpackAny } from './any';

/** Who a proxy is on the discovery stream: Envoy's `node.id` plus devicemesh's metadata. */
export interface ProxyIdentity {
  id: string;
  kind: 'agent' | 'sidecar';
  /** Extra `node.metadata` string fields, e.g. the agent's socket-plane address. */
  metadata?: Record<string, string>;
}

/**
 * Applies one state-of-the-world update of a type. Resolve to ACK; throw to NACK with the error's
 * message (the handler keeps whatever it could apply, as Envoy does with listeners).
 */
export type ResourceHandler = (resources: unknown[], version: string) => Promise<void> | void;

export interface AdsClientOptions {
  address: string;
  identity: ProxyIdentity;
  handlers: Record<string, ResourceHandler>;
  log: Logger;
  credentials?: grpc.ChannelCredentials;
}

type AdsStream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

/**
 * A proxy's end of Envoy's Aggregated Discovery Service, state-of-the-world variant: one stream,
 * a wildcard subscription per type, ACK/NACK per response, reconnect with backoff. The handlers
 * own the applied state, so the last good configuration survives a lost control plane.
 *
 * Events: `connected`, `disconnected` (with the reason), `applied` (typeUrl, version),
 * `rejected` (typeUrl, version, message).
 */
export class AdsClient extends EventEmitter {
  private readonly client: grpc.Client;
  private readonly backoff = new Backoff(250, 5000);
  private readonly ackedVersion = new Map<string, string>();
  private stream: AdsStream | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Updates of one type apply in order, never concurrently. */
  private readonly applying = new Map<string, Promise<void>>();

  constructor(private readonly options: AdsClientOptions) {
    super();
    const Ctor = serviceClient('envoy.service.discovery.v3.AggregatedDiscoveryService');
    this.client = new Ctor(options.address, options.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5_000,
    });
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stream?.cancel();
    this.stream = undefined;
    this.client.close();
  }

  /** The version last ACKed per type URL. */
  versions(): Record<string, string> {
    return Object.fromEntries(this.ackedVersion);
  }

  private node(): XdsNode {
    const fields: Record<string, { stringValue: string; kind: string }> = {};
    const meta = { kind: this.options.identity.kind, ...this.options.identity.metadata };
    for (const [k, v] of Object.entries(meta)) fields[k] = { stringValue: v, kind: 'stringValue' };
    return {
      id: this.options.identity.id,
      cluster: `devicemesh-${this.options.identity.kind}`,
      metadata: { fields },
      userAgentName: 'devicemesh',
    };
  }

  private open(): void {
    if (this.stopped) return;
    const stream = (this.client as unknown as { streamAggregatedResources(): AdsStream }).streamAggregatedResources();
    this.stream = stream;
    let first = true;
    stream.on('data', (response: DiscoveryResponse) => {
      if (first) {
        first = false;
        this.backoff.reset();
        this.emit('connected');
      }
      this.onResponse(stream, response);
    });
    stream.on('error', (err: grpc.ServiceError) => this.onClosed(stream, err.details || err.message));
    stream.on('end', () => this.onClosed(stream, 'stream ended by the control plane'));
    let node: XdsNode | null = this.node();
    for (const typeUrl of Object.keys(this.options.handlers)) {
      // Envoy sends the node on the first request of a stream only.
      stream.write({
        versionInfo: this.ackedVersion.get(typeUrl) ?? '',
        node,
        resourceNames: [],
        typeUrl,
        responseNonce: '',
        errorDetail: null,
      });
      node = null;
    }
  }

  private onClosed(stream: AdsStream, reason: string): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.options.log.warn({ reason, retryInMs: Math.round(delay) }, 'discovery stream lost; keeping last good configuration');
    this.emit('disconnected', reason);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private onResponse(stream: AdsStream, response: DiscoveryResponse): void {
    const { typeUrl, versionInfo, nonce } = response;
    const handler = this.options.handlers[typeUrl];
    const previous = this.applying.get(typeUrl) ?? Promise.resolve();
    const next = previous.then(async () => {
      let rejection: string | undefined;
      if (!handler) {
        rejection = `not subscribed to ${typeUrl}`;
      } else {
        try {
          const resources = response.resources.map((any) => unpackAny(any, typeUrl));
          await handler(resources, versionInfo);
        } catch (err) {
          rejection = errorMessage(err);
        }
      }
      if (rejection === undefined) {
        this.ackedVersion.set(typeUrl, versionInfo);
        this.emit('applied', typeUrl, versionInfo);
      } else {
        this.options.log.warn({ typeUrl, version: versionInfo, error: rejection }, 'configuration rejected (NACK)');
        this.emit('rejected', typeUrl, versionInfo, rejection);
      }
      if (this.stream !== stream) return;
      stream.write({
        versionInfo: this.ackedVersion.get(typeUrl) ?? '',
        node: null,
        resourceNames: [],
        typeUrl,
        responseNonce: nonce,
        errorDetail: rejection === undefined ? null : { code: grpc.status.INVALID_ARGUMENT, message: rejection },
      });
    });
    this.applying.set(typeUrl, next);
  }
}
