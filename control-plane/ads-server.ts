import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { AlreadyExistsError, errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import type { DiscoveryRequest, DiscoveryResponse, Timestamp } from '../src/proto/types';
import type { Stats } from '../src/telemetry/stats';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '../src/xds/delta-messages';
import { DeltaStream } from './ads-delta';
import { AdsMetrics } from './ads-metrics';
import { SotwStream } from './ads-sotw';
import { type AdsStream, endWithStatus, type StreamServices } from './ads-stream';
import type { ProxyStatusTracker } from './proxy-status';
import type { ChangeReason, SnapshotCache } from './snapshot-cache';

/** Where agents' comings and goings are recorded (the control-plane state). */
export interface HostPresence {
  /** Resolves with when the connection was recorded. */
  hostConnected(id: string, socketPlaneAddress: string): Promise<Timestamp>;
  /** Withdraws the host's address, unless a later connection (than `connectedAt`) was recorded. */
  hostDisconnected(id: string, connectedAt: Timestamp): Promise<void>;
}

/** The one stream a host's socket-plane address belongs to. */
interface HostOwner {
  stream: AdsStream;
  since: Date;
  /** Set once the host's connection is recorded. */
  connectedAt: Promise<Timestamp> | undefined;
}

export interface AdsServerOptions {
  cache: SnapshotCache;
  proxies: ProxyStatusTracker;
  hosts: HostPresence;
  stats: Stats;
  log: Logger;
  /**
   * Whether two client certificates (serials) are of one member process: a restarted agent with
   * its stored identity replaces its own stale stream. Undefined (--insecure): never.
   */
  sameMember?: (a: string, b: string) => boolean;
  /** Checks a discovery stream's node against the caller's certificate (undefined: --insecure). */
  checkNode?: StreamServices['checkNode'];
  /** A change is pushed this much later, with whatever else arrives meanwhile (default 10 ms). */
  debounceMs?: number;
  /** While a proxy's changes keep coming, its pushes are spaced twice as far apart each time, up to this (default 1 s). */
  maxIntervalMs?: number;
  /** Streams told of a change between two turns of the event loop (default 100). */
  batchSize?: number;
}

/** The changes gathered for one proxy during a burst. */
interface PendingChange {
  reasons: Set<ChangeReason>;
  at: number;
}

/**
 * Envoy's Aggregated Discovery Service serving devicemesh Mappings, in both variants
 * (StreamAggregatedResources and DeltaAggregatedResources) over one snapshot cache and one proxy
 * status tracker. Changes are debounced, coalesced and paced per proxy; each stream keeps one
 * response in flight per type and only ever the latest snapshot, so a slow proxy costs nothing
 * more.
 */
export class AdsServer {
  private readonly streams = new Set<AdsStream>();
  private readonly byNode = new Map<string, Set<AdsStream>>();
  private readonly owners = new Map<string, HostOwner>();
  private readonly metrics: AdsMetrics;
  private readonly services: StreamServices;
  private readonly debounceMs: number;
  private readonly batchSize: number;
  private pending = new Map<string, PendingChange>();
  private pushTimer: NodeJS.Timeout | undefined;
  /** Pushes run one burst after another. */
  private pushing: Promise<void> = Promise.resolve();
  private nextStreamId = 1;
  private closing = false;

  constructor(private readonly options: AdsServerOptions) {
    this.debounceMs = options.debounceMs ?? 10;
    this.batchSize = options.batchSize ?? 100;
    this.metrics = new AdsMetrics(options.stats);
    this.metrics.connectedProxies(0);
    this.services = {
      cache: options.cache,
      proxies: options.proxies,
      metrics: this.metrics,
      log: options.log,
      noncePrefix: `${randomBytes(4).toString('hex')}.`,
      pace: { minMs: this.debounceMs, maxMs: Math.max(options.maxIntervalMs ?? 1000, this.debounceMs) },
      identified: (stream) => this.identified(stream),
      closed: (stream) => this.closed(stream),
      ...(options.checkNode ? { checkNode: options.checkNode } : {}),
    };
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void => {
        this.accept(call, (id) => new SotwStream(id, 'sotw', call, this.services));
      },
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>): void => {
        this.accept(call, (id) => new DeltaStream(id, 'delta', call, this.services));
      },
    };
  }

  /**
   * These proxies' snapshots changed (the cache says how and when): push to them debounceMs
   * later, with whatever else changes meanwhile. Each stream then paces its own pushes.
   */
  notify(keys: readonly string[]): void {
    if (keys.length === 0 || this.closing) return;
    for (const key of keys) {
      const change = this.options.cache.lastChange(key);
      if (!change) continue;
      const seen = this.pending.get(key);
      if (seen) for (const reason of change.reasons) seen.reasons.add(reason);
      else this.pending.set(key, { reasons: new Set(change.reasons), at: change.at });
    }
    this.pushTimer ??= setTimeout(() => this.startPush(), this.debounceMs);
  }

  /** The certificate serial of the stream that holds the host's address now; undefined when none does. */
  hostOwner(hostId: string): string | undefined {
    return this.owners.get(hostId)?.stream.certificateSerial || undefined;
  }

  /** Ends the streams opened with one of these (revoked) certificates; returns how many. */
  closeRevoked(serials: ReadonlySet<string>): number {
    let closed = 0;
    for (const stream of [...this.streams]) {
      if (!stream.certificateSerial || !serials.has(stream.certificateSerial)) continue;
      this.options.log.warn({ node: stream.node?.id, kind: stream.node?.kind, serial: stream.certificateSerial }, 'discovery stream closed: its certificate was revoked');
      this.options.stats.add('xds_streams_revoked', 1);
      stream.end(grpc.status.UNAUTHENTICATED, `certificate ${stream.certificateSerial} was revoked`);
      closed++;
    }
    return closed;
  }

  /** Ends every stream. Hosts are not marked disconnected: the restart does that on load. */
  close(): void {
    this.closing = true;
    clearTimeout(this.pushTimer);
    // UNAVAILABLE rather than OK: a proxy reconnects, and does not take it for a server without the protocol.
    for (const stream of [...this.streams]) stream.end(grpc.status.UNAVAILABLE, 'control plane is shutting down');
  }

  private accept(call: grpc.ServerDuplexStream<unknown, unknown>, create: (id: number) => AdsStream): void {
    if (this.closing) {
      endWithStatus(call, grpc.status.UNAVAILABLE, 'control plane is shutting down');
      return;
    }
    this.streams.add(create(this.nextStreamId++));
  }

  private startPush(): void {
    this.pushTimer = undefined;
    const burst = this.pending;
    this.pending = new Map();
    this.pushing = this.pushing
      .then(() => this.push(burst))
      .catch((err: unknown) => this.options.log.error({ error: errorMessage(err) }, 'pushing discovery responses failed'));
  }

  /** Tells the streams of every changed proxy, yielding between batches so that requests and I/O keep flowing. */
  private async push(burst: ReadonlyMap<string, PendingChange>): Promise<void> {
    let told = 0;
    for (const [key, change] of burst) {
      for (const stream of [...(this.byNode.get(key) ?? [])]) {
        stream.changed(change);
        if (++told % this.batchSize === 0) await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.closing) return;
      }
    }
  }

  private async identified(stream: AdsStream): Promise<void> {
    const node = stream.node;
    if (!node) return;
    let same = this.byNode.get(node.key);
    if (!same) this.byNode.set(node.key, (same = new Set()));
    same.add(stream);
    this.metrics.connectedProxies(this.options.proxies.count());
    if (node.kind !== 'agent') return;
    const owner = this.owners.get(node.id);
    const sameMember = this.options.sameMember;
    if (owner && sameMember && stream.certificateSerial && sameMember(owner.stream.certificateSerial, stream.certificateSerial)) {
      // The same agent again (restarted with its stored identity, or reconnecting before the old
      // stream was seen to break): the newer stream is the live one.
      this.options.stats.add('agent_streams_replaced', 1);
      this.options.log.warn({ host: node.id, socketPlane: node.socketPlane, ownerSince: owner.since.toISOString() }, 'agent stream replaced by a newer stream of the same agent');
      this.owners.delete(node.id);
      owner.stream.end(grpc.status.UNAVAILABLE, `replaced by a newer stream of agent ${node.id}`);
    } else if (owner) {
      // First come, first served: a restarted agent's old stream ends with its process (or at the
      // keepalive deadline) and the new one's retry gets in then; a second process holding the
      // host's credentials gets nothing, where replacing would let it capture every session.
      this.options.stats.add('agent_streams_refused', 1, { reason: 'host_has_agent' });
      const ownerNode = owner.stream.node;
      this.options.log.warn(
        { host: node.id, socketPlane: node.socketPlane, owner: ownerNode?.socketPlane, ownerSince: owner.since.toISOString() },
        'second agent stream for a host refused: the host already has a live agent',
      );
      throw new AlreadyExistsError(
        `host ${node.id} already has a live agent (advertising ${ownerNode?.socketPlane ?? '?'}, connected at ${owner.since.toISOString()}); one agent per host`,
      );
    }
    const mine: HostOwner = { stream, since: new Date(), connectedAt: undefined };
    this.owners.set(node.id, mine);
    // Recorded before the first response, so that the agent's first snapshot already has its mappings.
    mine.connectedAt = this.options.hosts.hostConnected(node.id, node.socketPlane);
    await mine.connectedAt;
  }

  private closed(stream: AdsStream): void {
    this.streams.delete(stream);
    this.metrics.connectedProxies(this.options.proxies.count());
    const node = stream.node;
    if (!node || !this.byNode.get(node.key)?.delete(stream)) return;
    if (this.byNode.get(node.key)?.size === 0) this.byNode.delete(node.key);
    const owner = this.owners.get(node.id);
    if (node.kind !== 'agent' || owner?.stream !== stream) return;
    this.owners.delete(node.id);
    // At shutdown the address stays: the agents reconnect to the next control plane.
    if (this.closing || !owner.connectedAt) return;
    owner.connectedAt
      .then((connectedAt) => this.options.hosts.hostDisconnected(node.id, connectedAt))
      .catch((err: unknown) => {
        this.options.log.error({ host: node.id, error: errorMessage(err) }, 'could not record host as disconnected');
      });
  }
}
