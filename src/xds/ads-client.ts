import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../errors';
import type { Logger } from '../log';
import { ReplicaSet } from '../grpc/replica-set';
import { serviceClient } from '../proto/load';
import type { DiscoveryRequest, DiscoveryResponse, XdsNode, XdsStatus } from '../proto/types';
import { SPIFFE_CHANNEL_OPTIONS } from '../security/control-plane-identity';
import { Backoff } from '../util/backoff';
import { unpackAny } from './any';
import type { ResourceTypes } from './type-urls';
import { type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, WILDCARD } from './delta-messages';
import { applyDelta, NO_RESOURCES, type ResourceSet, versionsOf } from './delta-resources';
import type { AdsProtocol } from './protocols';

/** Who a proxy is on the discovery stream: Envoy's `node.id` plus devicemesh's metadata. */
export interface ProxyIdentity {
  id: string;
  kind: 'agent' | 'sidecar';
  /** Extra `node.metadata` string fields, e.g. the agent's socket-plane address. */
  metadata?: Record<string, string>;
}

/**
 * Applies the complete current set of a type, whichever protocol delivered it. Resolve to ACK;
 * throw to NACK with the error's message (the handler keeps whatever it could apply, as Envoy
 * does with listeners).
 */
export type ResourceHandler<R = unknown> = (resources: R[], version: string) => Promise<void> | void;

/** A handler per resource type subscribed to, given that type's decoded messages. */
export type ResourceHandlers = { [U in keyof ResourceTypes]?: ResourceHandler<ResourceTypes[U]> };

export interface AdsClientOptions {
  /** host:port of the control plane, or of its replicas separated by commas: a lost stream moves on to the next. */
  address: string;
  identity: ProxyIdentity;
  handlers: ResourceHandlers;
  log: Logger;
  credentials?: grpc.ChannelCredentials;
  /**
   * 'delta' (the default) speaks incremental xDS, and falls back to 'sotw' for good if the control
   * plane turns out not to serve it.
   */
  protocol?: AdsProtocol;
}

type SotwCall = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
type DeltaCall = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

/** One discovery stream and what has been heard on it. */
type Stream = ({ protocol: 'sotw'; call: SotwCall } | { protocol: 'delta'; call: DeltaCall }) & {
  /** The control plane sent headers or a response: it accepted the stream. */
  answered: boolean;
};

/** What applying one response came to. */
interface Outcome {
  version: string;
  rejection: string | undefined;
}

/**
 * A proxy's end of Envoy's Aggregated Discovery Service: one stream, a wildcard subscription per
 * type, ACK/NACK per response, reconnect with backoff. Incremental by default: it keeps each
 * type's resources by name, hands the handler the whole current set after every response, and
 * on reconnect tells the control plane what it holds (initial_resource_versions) so that only
 * the difference comes back. The handlers own the applied state, so the last good configuration
 * survives a lost control plane.
 *
 * Events: `connected`, `disconnected` (with the reason), `applied` (typeUrl, version),
 * `rejected` (typeUrl, version, message).
 */
export class AdsClient extends EventEmitter {
  /** One channel per control-plane replica; the current one is the one the stream uses. */
  private readonly replicas: ReplicaSet<grpc.Client>;
  private readonly backoff = new Backoff(250, 5000);
  private readonly ackedVersion = new Map<string, string>();
  /** Incremental: the last good resources per type. */
  private readonly held = new Map<string, ResourceSet>();
  private protocol: AdsProtocol;
  private stream: Stream | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Updates of one type apply in order, never concurrently. */
  private readonly applying = new Map<string, Promise<void>>();

  constructor(private readonly options: AdsClientOptions) {
    super();
    this.protocol = options.protocol ?? 'delta';
    const Ctor = serviceClient('envoy.service.discovery.v3.AggregatedDiscoveryService');
    this.replicas = new ReplicaSet(
      options.address,
      (address) =>
        new Ctor(address, options.credentials ?? grpc.credentials.createInsecure(), {
          'grpc.keepalive_time_ms': 10_000,
          'grpc.keepalive_timeout_ms': 5_000,
          'grpc.keepalive_permit_without_calls': 1,
          'grpc.initial_reconnect_backoff_ms': 250,
          'grpc.max_reconnect_backoff_ms': 5_000,
          ...(options.credentials ? SPIFFE_CHANNEL_OPTIONS : {}),
        }),
    );
  }

  /** The control-plane address the stream uses (or will use next). */
  address(): string {
    return this.replicas.current().address;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stream?.call.cancel();
    this.stream = undefined;
    for (const client of this.replicas.clients()) client.close();
  }

  /** The version last ACKed per type URL. */
  versions(): Record<string, string> {
    return Object.fromEntries(this.ackedVersion);
  }

  /** The protocol the client speaks now: the one asked for, or 'sotw' after a fallback. */
  protocolInUse(): AdsProtocol {
    return this.protocol;
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
    const methods = this.replicas.current().client as unknown as { streamAggregatedResources(): SotwCall; deltaAggregatedResources(): DeltaCall };
    const stream: Stream =
      this.protocol === 'delta'
        ? { protocol: 'delta', call: methods.deltaAggregatedResources(), answered: false }
        : { protocol: 'sotw', call: methods.streamAggregatedResources(), answered: false };
    this.stream = stream;
    const heard = (): void => {
      if (stream.answered) return;
      stream.answered = true;
      this.backoff.reset();
      this.emit('connected');
    };
    stream.call.on('metadata', heard);
    if (stream.protocol === 'delta') {
      stream.call.on('data', (response: DeltaDiscoveryResponse) => {
        heard();
        this.onDeltaResponse(stream, response);
      });
    } else {
      stream.call.on('data', (response: DiscoveryResponse) => {
        heard();
        this.onSotwResponse(stream, response);
      });
    }
    // The final status says everything an 'error' would.
    stream.call.on('error', () => undefined);
    stream.call.on('status', (status: grpc.StatusObject) => this.onClosed(stream, status));
    // Once the updates being applied are done, so that what the subscriptions declare is current.
    void Promise.all(this.applying.values()).then(() => this.subscribe(stream));
  }

  private subscribe(stream: Stream): void {
    if (this.stream !== stream) return;
    // Envoy sends the node on the first request of a stream only.
    let node: XdsNode | null = this.node();
    for (const typeUrl of Object.keys(this.options.handlers)) {
      if (stream.protocol === 'delta') {
        stream.call.write({
          node,
          typeUrl,
          resourceNamesSubscribe: [WILDCARD],
          resourceNamesUnsubscribe: [],
          initialResourceVersions: versionsOf(this.held.get(typeUrl) ?? NO_RESOURCES),
          responseNonce: '',
          errorDetail: null,
        });
      } else {
        stream.call.write({
          versionInfo: this.ackedVersion.get(typeUrl) ?? '',
          node,
          resourceNames: [],
          typeUrl,
          responseNonce: '',
          errorDetail: null,
        });
      }
      node = null;
    }
  }

  private onClosed(stream: Stream, status: grpc.StatusObject): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    if (this.stopped) return;
    // A control plane without incremental xDS answers UNIMPLEMENTED (or, if minimal, just closes
    // the stream without a word): the state of the world serves the same resources.
    if (stream.protocol === 'delta' && !stream.answered && (status.code === grpc.status.UNIMPLEMENTED || status.code === grpc.status.OK)) {
      this.options.log.info({ status: status.details }, 'control plane does not serve incremental xDS; using state of the world');
      this.protocol = 'sotw';
      this.held.clear();
      this.open();
      return;
    }
    const reason = status.code === grpc.status.OK ? 'stream ended by the control plane' : status.details || grpc.status[status.code] || String(status.code);
    const delay = this.backoff.next();
    const lost = this.address();
    // Replicas serve the same state: the next one resumes where this one left off (the versions held are declared on connecting).
    this.replicas.failed();
    this.options.log.warn({ reason, controlPlane: lost, next: this.address(), retryInMs: Math.round(delay) }, 'discovery stream lost; keeping last good configuration');
    this.emit('disconnected', reason);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private onSotwResponse(stream: Stream & { protocol: 'sotw' }, response: DiscoveryResponse): void {
    const { typeUrl, versionInfo, nonce } = response;
    this.enqueue(typeUrl, versionInfo, async (handler) => {
      await handler(response.resources.map((any) => unpackAny(any, typeUrl)), versionInfo);
    }).then((outcome) => {
      if (this.stream !== stream) return;
      stream.call.write({
        versionInfo: this.ackedVersion.get(typeUrl) ?? '',
        node: null,
        resourceNames: [],
        typeUrl,
        responseNonce: nonce,
        errorDetail: nack(outcome),
      });
    });
  }

  private onDeltaResponse(stream: Stream & { protocol: 'delta' }, response: DeltaDiscoveryResponse): void {
    const { typeUrl, systemVersionInfo, nonce } = response;
    this.enqueue(typeUrl, systemVersionInfo, async (handler) => {
      const next = applyDelta(this.held.get(typeUrl) ?? NO_RESOURCES, response);
      await handler([...next.values()].map((r) => r.message), systemVersionInfo);
      // Kept only once applied: after a NACK the last good set is what reconnects declare.
      this.held.set(typeUrl, next);
    }).then((outcome) => {
      if (this.stream !== stream) return;
      stream.call.write({
        node: null,
        typeUrl,
        resourceNamesSubscribe: [],
        resourceNamesUnsubscribe: [],
        initialResourceVersions: {},
        responseNonce: nonce,
        errorDetail: nack(outcome),
      });
    });
  }

  /**
   * The handler of a type URL a response names. Its resources were decoded as that very type
   * (unpackAny with the response's type URL), so they are the messages the handler takes.
   */
  private handlerFor(typeUrl: string): ResourceHandler | undefined {
    const handlers: Partial<Record<string, ResourceHandler<never>>> = this.options.handlers;
    return Object.hasOwn(handlers, typeUrl) ? (handlers[typeUrl] as ResourceHandler | undefined) : undefined;
  }

  /** Applies one response of a type after the ones before it; records and announces the outcome. */
  private enqueue(typeUrl: string, version: string, apply: (handler: ResourceHandler) => Promise<void>): Promise<Outcome> {
    const handler = this.handlerFor(typeUrl);
    const previous = this.applying.get(typeUrl) ?? Promise.resolve();
    const outcome = previous.then(async (): Promise<Outcome> => {
      let rejection: string | undefined;
      if (!handler) {
        rejection = `not subscribed to ${typeUrl}`;
      } else {
        try {
          await apply(handler);
        } catch (err) {
          rejection = errorMessage(err);
        }
      }
      if (rejection === undefined) {
        this.ackedVersion.set(typeUrl, version);
        this.emit('applied', typeUrl, version);
      } else {
        this.options.log.warn({ typeUrl, version, error: rejection }, 'configuration rejected (NACK)');
        this.emit('rejected', typeUrl, version, rejection);
      }
      return { version, rejection };
    });
    this.applying.set(typeUrl, outcome.then(() => undefined));
    return outcome;
  }
}

function nack(outcome: Outcome): XdsStatus | null {
  return outcome.rejection === undefined ? null : { code: grpc.status.INVALID_ARGUMENT, message: outcome.rejection };
}
