import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, errorMessage, ProtocolError } from '../src/errors';
import type { Logger } from '../src/log';
import type { DiscoveryRequest, DiscoveryResponse } from '../src/proto/types';
import type { Stats } from '../src/telemetry/stats';
import { parseHostPort } from '../src/util/address';
import { MAPPING_TYPE_URL } from '../src/xds/type-urls';
import { timestampOf } from './canonical';
import type { ProxyStatusTracker } from './proxy-status';
import { nodeKey, type ProxyKind, type SnapshotCache } from './snapshot-cache';

/** Where agents' comings and goings are recorded (the control-plane state). */
export interface HostPresence {
  hostConnected(id: string, socketPlaneAddress: string): Promise<void>;
  hostDisconnected(id: string): Promise<void>;
}

export interface AdsServerOptions {
  cache: SnapshotCache;
  proxies: ProxyStatusTracker;
  hosts: HostPresence;
  stats: Stats;
  log: Logger;
  /** How long a burst of changes is gathered into one push. */
  debounceMs?: number;
}

type AdsCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

const SERVED_TYPES: ReadonlySet<string> = new Set([MAPPING_TYPE_URL]);
const CONTROL_PLANE_ID = 'devicemesh-control-plane';

/** One subscribed type on one stream. */
interface Subscription {
  /** The nonce of the last response; only a request answering it is an ACK or a NACK. */
  latestNonce: string;
  sentVersion: string;
  /** A response awaits its ACK/NACK: nothing more is written meanwhile, so a slow proxy costs one buffered response. */
  inFlight: boolean;
  /** The proxy's snapshot may have changed since the last send. */
  dirty: boolean;
}

interface Connection {
  id: number;
  call: AdsCall;
  peer: string;
  node?: { id: string; kind: ProxyKind; key: string };
  countedAsAgent: boolean;
  nonces: number;
  subscriptions: Map<string, Subscription>;
  /** The stream's buffer is full: wait for 'drain'. */
  blocked: boolean;
  closed: boolean;
  /** Requests are handled one after another (the first may wait for the host to be recorded). */
  work: Promise<void>;
  ignoredTypes: Set<string>;
}

/**
 * Envoy's Aggregated Discovery Service, state-of-the-world variant, serving devicemesh Mappings.
 * Each response carries all of the proxy's resources; a change that leaves a proxy's resources
 * alone sends it nothing; a NACKed version is not sent again, the next change is.
 */
export class AdsServer {
  private readonly connections = new Set<Connection>();
  private readonly agentStreams = new Map<string, number>();
  private readonly changedNodes = new Set<string>();
  private readonly debounceMs: number;
  private pushTimer: NodeJS.Timeout | undefined;
  private nextStreamId = 1;
  private closing = false;

  constructor(private readonly options: AdsServerOptions) {
    this.debounceMs = options.debounceMs ?? 10;
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      StreamAggregatedResources: (call: AdsCall): void => this.serve(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>): void =>
        endWithStatus(call, grpc.status.UNIMPLEMENTED, 'DeltaAggregatedResources is not implemented yet; use StreamAggregatedResources'),
    };
  }

  /** These proxies' snapshots changed: push to them once the burst is over. */
  notify(keys: readonly string[]): void {
    if (keys.length === 0 || this.closing) return;
    for (const k of keys) this.changedNodes.add(k);
    this.pushTimer ??= setTimeout(() => {
      this.pushTimer = undefined;
      const changed = new Set(this.changedNodes);
      this.changedNodes.clear();
      for (const conn of this.connections) {
        if (!conn.node || !changed.has(conn.node.key)) continue;
        for (const sub of conn.subscriptions.values()) sub.dirty = true;
        this.flush(conn);
      }
    }, this.debounceMs);
  }

  /** Ends every stream. Hosts are not marked disconnected: the restart does that on load. */
  close(): void {
    this.closing = true;
    clearTimeout(this.pushTimer);
    for (const conn of [...this.connections]) {
      this.cleanup(conn);
      conn.call.end();
    }
  }

  private serve(call: AdsCall): void {
    if (this.closing) {
      endWithStatus(call, grpc.status.UNAVAILABLE, 'control plane is shutting down');
      return;
    }
    const conn: Connection = {
      id: this.nextStreamId++,
      call,
      peer: call.getPeer(),
      countedAsAgent: false,
      nonces: 0,
      subscriptions: new Map(),
      blocked: false,
      closed: false,
      work: Promise.resolve(),
      ignoredTypes: new Set(),
    };
    this.connections.add(conn);
    call.on('data', (request: DiscoveryRequest) => {
      conn.work = conn.work.then(() => this.onRequest(conn, request)).catch((err: unknown) => this.fail(conn, err));
    });
    call.on('end', () => {
      this.cleanup(conn);
      call.end();
    });
    call.on('cancelled', () => this.cleanup(conn));
    call.on('error', () => this.cleanup(conn));
    call.on('close', () => this.cleanup(conn));
  }

  private async onRequest(conn: Connection, request: DiscoveryRequest): Promise<void> {
    if (conn.closed) return;
    if (!conn.node) await this.hello(conn, request);
    const { typeUrl, responseNonce } = request;
    if (!SERVED_TYPES.has(typeUrl)) {
      if (!conn.ignoredTypes.has(typeUrl)) {
        conn.ignoredTypes.add(typeUrl);
        this.options.log.warn({ node: conn.node?.id, typeUrl }, 'discovery request for a type this control plane does not serve; ignoring it');
      }
      return;
    }
    if (!responseNonce) {
      // A new subscription wants the current state, whatever this stream was sent before.
      conn.subscriptions.set(typeUrl, { latestNonce: '', sentVersion: '', inFlight: false, dirty: true });
      this.options.proxies.subscribed(conn.id, typeUrl);
      this.flush(conn);
      return;
    }
    const sub = conn.subscriptions.get(typeUrl);
    if (!sub || responseNonce !== sub.latestNonce) {
      // Answers a response that has since been superseded: it says nothing about the latest one.
      this.options.log.debug({ node: conn.node?.id, typeUrl, responseNonce }, 'stale discovery request ignored');
      return;
    }
    sub.inFlight = false;
    const node = conn.node as NonNullable<Connection['node']>;
    if (request.errorDetail) {
      const message = request.errorDetail.message || `rejected with code ${request.errorDetail.code}`;
      this.options.proxies.nacked(conn.id, typeUrl, sub.sentVersion, message);
      this.options.stats.add('xds_nacks', 1, { node: node.id });
      this.options.log.warn({ node: node.id, kind: node.kind, typeUrl, version: sub.sentVersion, error: message }, 'proxy rejected configuration (NACK)');
    } else {
      this.options.proxies.acked(conn.id, typeUrl, request.versionInfo);
      this.options.stats.add('xds_acks', 1, { type: typeUrl });
      this.options.log.debug({ node: node.id, kind: node.kind, typeUrl, version: request.versionInfo }, 'proxy acknowledged configuration');
    }
    // Changes that arrived while the response was in flight go out now.
    this.flush(conn);
  }

  /** The first request names the proxy; an agent's also announces its host's socket plane. */
  private async hello(conn: Connection, request: DiscoveryRequest): Promise<void> {
    const id = request.node?.id;
    if (!id) throw new ProtocolError('the first discovery request of a stream must carry node.id');
    const fields = request.node?.metadata?.fields ?? {};
    const kind = fields.kind?.stringValue;
    if (kind !== 'agent' && kind !== 'sidecar') {
      throw new ProtocolError(`node ${id}: node.metadata.kind must be "agent" or "sidecar", got ${JSON.stringify(kind ?? '')}`);
    }
    let socketPlane = '';
    if (kind === 'agent') {
      socketPlane = fields.socketPlane?.stringValue ?? '';
      try {
        parseHostPort(socketPlane);
      } catch {
        throw new ProtocolError(`agent ${id}: node.metadata.socketPlane must be its socket plane's host:port, got ${JSON.stringify(socketPlane)}`);
      }
    }
    conn.node = { id, kind, key: nodeKey(kind, id) };
    this.options.proxies.connected(conn.id, { nodeId: id, kind, peer: conn.peer, connectedAt: timestampOf(new Date()) });
    this.options.stats.set('connected_proxies', this.options.proxies.count());
    this.options.log.info({ node: id, kind, peer: conn.peer, socketPlane: socketPlane || undefined }, 'proxy connected');
    if (kind === 'agent') {
      conn.countedAsAgent = true;
      this.agentStreams.set(id, (this.agentStreams.get(id) ?? 0) + 1);
      // Recorded before the first response, so that the agent's first snapshot already has its mappings.
      await this.options.hosts.hostConnected(id, socketPlane);
    }
  }

  private flush(conn: Connection): void {
    const node = conn.node;
    if (conn.closed || conn.blocked || !node) return;
    for (const [typeUrl, sub] of conn.subscriptions) {
      if (!sub.dirty || sub.inFlight) continue;
      sub.dirty = false;
      const snapshot = this.options.cache.snapshot(node.kind, node.id);
      // Already sent: acknowledged, in flight or rejected. A rejected version waits for the next change.
      if (snapshot.version === sub.sentVersion) continue;
      const nonce = String(++conn.nonces);
      sub.latestNonce = nonce;
      sub.sentVersion = snapshot.version;
      sub.inFlight = true;
      const writable = conn.call.write({
        versionInfo: snapshot.version,
        resources: [...snapshot.resources],
        typeUrl,
        nonce,
        controlPlane: { identifier: CONTROL_PLANE_ID },
      });
      this.options.proxies.sent(conn.id, typeUrl, snapshot.version);
      this.options.stats.add('xds_pushes', 1, { type: typeUrl });
      this.options.log.info(
        { node: node.id, kind: node.kind, typeUrl, version: snapshot.version, resources: snapshot.resources.length, nonce },
        'mappings pushed',
      );
      if (!writable) {
        conn.blocked = true;
        conn.call.once('drain', () => {
          conn.blocked = false;
          this.flush(conn);
        });
      }
    }
  }

  private fail(conn: Connection, err: unknown): void {
    const invalid = err instanceof ProtocolError;
    const unavailable = err instanceof DeviceMeshError && err.code === 'UNAVAILABLE';
    this.options.log.warn({ node: conn.node?.id, peer: conn.peer, error: errorMessage(err) }, 'discovery stream closed with an error');
    this.cleanup(conn);
    const code = invalid ? grpc.status.INVALID_ARGUMENT : unavailable ? grpc.status.UNAVAILABLE : grpc.status.INTERNAL;
    endWithStatus(conn.call, code, errorMessage(err));
  }

  private cleanup(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    this.connections.delete(conn);
    this.options.proxies.disconnected(conn.id);
    this.options.stats.set('connected_proxies', this.options.proxies.count());
    const node = conn.node;
    if (!node) return;
    this.options.log.info({ node: node.id, kind: node.kind, peer: conn.peer }, 'proxy disconnected');
    if (!conn.countedAsAgent) return;
    const left = (this.agentStreams.get(node.id) ?? 1) - 1;
    if (left > 0) {
      this.agentStreams.set(node.id, left);
      return;
    }
    this.agentStreams.delete(node.id);
    // The host's mappings stay: its sessions may survive a short control-path outage.
    if (!this.closing) {
      this.options.hosts.hostDisconnected(node.id).catch((err: unknown) => {
        this.options.log.error({ host: node.id, error: errorMessage(err) }, 'could not record host as disconnected');
      });
    }
  }
}

function endWithStatus(call: grpc.ServerDuplexStream<unknown, unknown>, code: grpc.status, details: string): void {
  // grpc-js turns an 'error' event on a server stream into the call's final status.
  call.emit('error', Object.assign(new Error(details), { code, details }));
}
