import type { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { errorMessage, ProtocolError } from '../src/errors';
import { grpcStatusOf } from '../src/grpc/grpc-errors';
import type { Logger } from '../src/log';
import type { XdsNode, XdsStatus } from '../src/proto/types';
import { parseHostPort } from '../src/util/address';
import type { AdsProtocol } from '../src/xds/protocols';
import { MAPPING_TYPE_URL } from '../src/xds/type-urls';
import type { AdsMetrics, PushTrigger } from './ads-metrics';
import { timestampOf } from './canonical';
import type { ProxyStatusTracker } from './proxy-status';
import { nodeKey, type ProxyKind, type Snapshot, type SnapshotCache, type SnapshotChange } from './snapshot-cache';

const SERVED_TYPES: ReadonlySet<string> = new Set([MAPPING_TYPE_URL]);
export const CONTROL_PLANE_ID = 'devicemesh-control-plane';
/** A NACK's message is stored and listed: a proxy cannot make it arbitrarily large. */
const MAX_NACK_MESSAGE = 1024;

/** Who is at the other end of a stream, from its first request. */
export interface ProxyNode {
  id: string;
  kind: ProxyKind;
  key: string;
  /** An agent's socket-plane host:port; empty for a sidecar. */
  socketPlane: string;
}

/** What a stream needs from the server that owns it. */
export interface StreamServices {
  cache: SnapshotCache;
  proxies: ProxyStatusTracker;
  metrics: AdsMetrics;
  log: Logger;
  /** Makes nonces unique to this server process, so that no other stream's nonce can match. */
  noncePrefix: string;
  /**
   * Pushes carrying changes are spaced at least minMs apart; while changes keep coming the
   * spacing doubles with each push, up to maxMs, and after a calm spacing it is back to minMs.
   */
  pace: { minMs: number; maxMs: number };
  /** The stream said who it is; resolves once the server has recorded it (an agent's host first). */
  identified(stream: AdsStream): Promise<void>;
  /** Refuses (throws) a node the caller's credentials do not name; absent when running --insecure. */
  checkNode?(call: grpc.ServerDuplexStream<unknown, unknown>, kind: 'agent' | 'sidecar', id: string, socketPlane: string): void;
  closed(stream: AdsStream): void;
}

/** A response written and not yet answered. */
interface Sent {
  nonce: string;
  version: string;
  /** When the oldest change it carries was committed; undefined when it carries none. */
  changedAt: number | undefined;
}

/** One subscribed type on one stream: the push and ACK state both protocols share. */
export interface TypeState {
  readonly typeUrl: string;
  /** One response awaits its ACK/NACK at a time; a slow proxy costs one buffered response. */
  inFlight: Sent | undefined;
  /** The proxy's snapshot or subscription may have changed since the last push. */
  dirty: boolean;
  /** The snapshot version last NACKed: not answered again; the next change is. */
  nackedVersion: string;
  /** Why the next push happens, gathered since the last one. */
  triggers: Set<PushTrigger>;
  /** When the oldest change not yet pushed was committed. */
  changedSince: number | undefined;
  /** When the last push carrying changes started, and the spacing the next one keeps from it. */
  lastChangePushAt: number;
  spacing: number;
}

export function newTypeState(typeUrl: string, trigger: PushTrigger): TypeState {
  return {
    typeUrl,
    inFlight: undefined,
    dirty: true,
    nackedVersion: '',
    triggers: new Set([trigger]),
    changedSince: undefined,
    lastChangePushAt: -Infinity,
    spacing: 0,
  };
}

/** A response a protocol has decided to send, waiting for its nonce. */
export interface Prepared<Res> {
  version: string;
  response(nonce: string): Res;
  /** What the push log line says about it. */
  summary: Record<string, number>;
}

/**
 * One proxy's discovery stream, whichever protocol it speaks: who the proxy is, its requests
 * handled one after another, nonces, ACK/NACK, the proxy status it reports, and flow control
 * (a response in flight per type; a full stream buffer waits for 'drain').
 */
export abstract class AdsStream<Req = unknown, Res = unknown, T extends TypeState = TypeState> {
  node: ProxyNode | undefined;
  /** The serial of the client certificate the stream was opened with (upper-case hex); '' without TLS. */
  readonly certificateSerial: string;
  protected readonly types = new Map<string, T>();
  private readonly peer: string;
  private nonces = 0;
  private blocked = false;
  /** Wakes flush when a paced push is due. */
  private paceTimer: NodeJS.Timeout | undefined;
  private paceDue = Infinity;
  private closed = false;
  private work: Promise<void> = Promise.resolve();
  private readonly ignoredTypes = new Set<string>();

  constructor(
    readonly id: number,
    readonly protocol: AdsProtocol,
    protected readonly call: grpc.ServerDuplexStream<Req, Res>,
    protected readonly services: StreamServices,
  ) {
    this.peer = call.getPeer();
    this.certificateSerial = call.getAuthContext()?.sslPeerCertificate?.serialNumber?.toUpperCase() ?? '';
    call.on('data', (request: Req) => {
      this.work = this.work.then(() => this.onRequest(request)).catch((err: unknown) => this.fail(err));
    });
    call.on('end', () => {
      this.cleanup();
      call.end();
    });
    call.on('cancelled', () => this.cleanup());
    call.on('error', () => this.cleanup());
    call.on('close', () => this.cleanup());
  }

  /** The proxy's snapshot changed: push once whatever is in flight is answered. */
  changed(change: SnapshotChange): void {
    for (const state of this.types.values()) {
      state.dirty = true;
      for (const reason of change.reasons) state.triggers.add(reason);
      state.changedSince = Math.min(state.changedSince ?? change.at, change.at);
    }
    this.flush();
  }

  /** Ends the stream with a status; the server is shutting down or refusing it. */
  end(code: grpc.status, details: string): void {
    this.cleanup();
    endWithStatus(this.call, code, details);
  }

  /** The node of a request: set on a stream's first request, as Envoy sends it. */
  protected abstract nodeOf(request: Req): XdsNode | null;

  /** Handles an identified proxy's request: subscriptions, ACK, NACK. */
  protected abstract handle(request: Req): void;

  /** What to send for this type now, or undefined if the proxy needs nothing. */
  protected abstract prepare(state: T, snapshot: Snapshot): Prepared<Res> | undefined;

  /** The response in flight was applied. */
  protected accepted(_state: T): void {
    // Nothing to record by default: the proxy status tracker has the version.
  }

  /** The response in flight was rejected: the proxy kept what it had before. */
  protected rejected(_state: T): void {
    // Nothing to undo by default: the rejected version is not sent again (see flush).
  }

  /** True for a type this control plane serves; an unknown one is ignored, as xDS servers do, and logged once. */
  protected served(typeUrl: string): boolean {
    if (!typeUrl) throw new ProtocolError('a discovery request on the aggregated stream must carry type_url');
    if (SERVED_TYPES.has(typeUrl)) return true;
    if (!this.ignoredTypes.has(typeUrl)) {
      this.ignoredTypes.add(typeUrl);
      this.services.log.warn({ node: this.node?.id, typeUrl, protocol: this.protocol }, 'discovery request for a type this control plane does not serve; ignoring it');
    }
    return false;
  }

  protected subscribed(state: T): void {
    this.types.set(state.typeUrl, state);
    this.services.proxies.subscribed(this.id, state.typeUrl);
  }

  /**
   * A request naming a response nonce: an ACK, or a NACK when it carries error_detail. Only the
   * nonce of the response in flight counts; any other answers a response since superseded (or
   * sent on another stream) and says nothing about the latest one.
   */
  protected answer(state: T, nonce: string, errorDetail: XdsStatus | null): void {
    const sent = state.inFlight;
    const node = this.node as ProxyNode;
    const log = this.services.log;
    if (!sent || nonce !== sent.nonce) {
      log.debug({ node: node.id, typeUrl: state.typeUrl, responseNonce: nonce, protocol: this.protocol }, 'stale discovery request ignored');
      return;
    }
    state.inFlight = undefined;
    if (errorDetail) {
      const message = nackMessage(errorDetail);
      state.nackedVersion = sent.version;
      this.services.proxies.nacked(this.id, state.typeUrl, sent.version, message);
      this.services.metrics.nacked(node.id);
      log.warn({ node: node.id, kind: node.kind, typeUrl: state.typeUrl, version: sent.version, error: message, protocol: this.protocol }, 'proxy rejected configuration (NACK)');
      this.rejected(state);
    } else {
      state.nackedVersion = '';
      this.services.proxies.acked(this.id, state.typeUrl, sent.version);
      this.services.metrics.acked(state.typeUrl, this.protocol, sent.changedAt, node.id);
      log.debug({ node: node.id, kind: node.kind, typeUrl: state.typeUrl, version: sent.version, protocol: this.protocol }, 'proxy acknowledged configuration');
      this.accepted(state);
    }
  }

  private async onRequest(request: Req): Promise<void> {
    if (this.closed) return;
    if (!this.node) await this.hello(request);
    if (this.closed) return;
    this.handle(request);
    // Changes that arrived while a response was in flight, and new subscriptions, go out now.
    this.flush();
  }

  /** The first request names the proxy; an agent's also announces its host's socket plane. */
  private async hello(request: Req): Promise<void> {
    const node = this.nodeOf(request);
    const id = node?.id;
    if (!id) throw new ProtocolError('the first discovery request of a stream must carry node.id');
    const fields = node.metadata?.fields ?? {};
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
    this.services.checkNode?.(this.call as grpc.ServerDuplexStream<unknown, unknown>, kind, id, socketPlane);
    this.node = { id, kind, key: nodeKey(kind, id), socketPlane };
    this.services.proxies.connected(this.id, { nodeId: id, kind, peer: this.peer, connectedAt: timestampOf(new Date()) });
    this.services.log.info({ node: id, kind, peer: this.peer, protocol: this.protocol, socketPlane: socketPlane || undefined }, 'proxy connected');
    await this.services.identified(this);
    // Headers tell the proxy that the stream is accepted even when no response follows (an
    // incremental reconnect that has everything already), and that the server speaks this protocol.
    if (!this.closed) this.call.sendMetadata(new grpc.Metadata());
  }

  private flush(): void {
    const node = this.node;
    if (this.closed || this.blocked || !node) return;
    for (const state of this.types.values()) {
      if (!state.dirty || state.inFlight || !this.due(state)) continue;
      state.dirty = false;
      const snapshot = this.services.cache.snapshot(node.kind, node.id);
      // A rejected version waits for the next change.
      if (state.nackedVersion === snapshot.version) continue;
      const triggers = state.triggers;
      const changedAt = state.changedSince;
      state.triggers = new Set();
      state.changedSince = undefined;
      const prepared = this.prepare(state, snapshot);
      if (prepared) this.send(state, prepared, triggers, changedAt);
    }
  }

  /**
   * A push carrying changes waits for the stream's pace: a burst of changes costs a few pushes
   * (1,000 applies of 10 ms each, say), while changes a proxy has time to converge between go
   * out at once. Subscriptions are answered at once.
   */
  private due(state: T): boolean {
    if (state.changedSince === undefined) return true;
    const { minMs } = this.services.pace;
    // Calm since the last push: the change came a whole spacing after it.
    if (state.changedSince - state.lastChangePushAt >= state.spacing) state.spacing = minMs;
    const due = state.lastChangePushAt + state.spacing;
    const now = performance.now();
    if (now >= due) return true;
    if (due < this.paceDue) {
      clearTimeout(this.paceTimer);
      this.paceDue = due;
      this.paceTimer = setTimeout(() => {
        this.paceTimer = undefined;
        this.paceDue = Infinity;
        this.flush();
      }, due - now);
    }
    return false;
  }

  private send(state: T, prepared: Prepared<Res>, triggers: ReadonlySet<PushTrigger>, changedAt: number | undefined): void {
    const node = this.node as ProxyNode;
    const { metrics, proxies, log } = this.services;
    const nonce = `${this.services.noncePrefix}${this.id}.${++this.nonces}`;
    state.inFlight = { nonce, version: prepared.version, changedAt };
    if (changedAt !== undefined) {
      state.lastChangePushAt = performance.now();
      state.spacing = Math.min(state.spacing * 2, this.services.pace.maxMs);
    }
    metrics.pushStarted(state.typeUrl, this.protocol, triggers, changedAt);
    const writable = this.call.write(prepared.response(nonce), () => metrics.pushWritten(changedAt));
    proxies.sent(this.id, state.typeUrl, prepared.version);
    log.info(
      { node: node.id, kind: node.kind, typeUrl: state.typeUrl, version: prepared.version, nonce, protocol: this.protocol, triggers: [...triggers], ...prepared.summary },
      'mappings pushed',
    );
    if (!writable) {
      this.blocked = true;
      this.call.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
    }
  }

  private fail(err: unknown): void {
    this.services.log.warn({ node: this.node?.id, peer: this.peer, protocol: this.protocol, error: errorMessage(err) }, 'discovery stream closed with an error');
    this.end(grpcStatusOf(err), errorMessage(err));
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.paceTimer);
    this.services.proxies.disconnected(this.id);
    if (this.node) this.services.log.info({ node: this.node.id, kind: this.node.kind, peer: this.peer, protocol: this.protocol }, 'proxy disconnected');
    this.services.closed(this);
  }
}

function nackMessage(detail: XdsStatus): string {
  const message = typeof detail.message === 'string' && detail.message ? detail.message : `rejected with code ${detail.code}`;
  return message.length > MAX_NACK_MESSAGE ? `${message.slice(0, MAX_NACK_MESSAGE)}…` : message;
}

/** Ends a call with a status: grpc-js turns an 'error' event on a server stream into the call's final status. */
export function endWithStatus(call: EventEmitter, code: grpc.status, details: string): void {
  call.emit('error', Object.assign(new Error(details), { code, details }));
}
