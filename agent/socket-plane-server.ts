import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { DeviceMeshError, errorCode, errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import { AcceptGate } from '../src/security/accept-gate';
import { AddressPool } from '../src/security/address-pool';
import { ConnectionLimiter } from '../src/security/connection-limiter';
import { RefusalLog } from '../src/security/refusal-log';
import { handshakeRefusal, PeerRefusedError, socketPlaneServerContext, verifiedPeerIdentity } from '../src/security/socket-plane-tls';
import { formatSpiffeId, type SpiffeId } from '../src/security/spiffe-id';
import type { TlsIdentity } from '../src/security/tls-identity';
import { type ConnectionOptions, FramedConnection, type OpenDecision } from '../src/socket-plane/connection';
import { encodeError, type ErrorPayload } from '../src/socket-plane/control-messages';
import { encodeFrame, FrameType } from '../src/socket-plane/frame';
import type { Stats } from '../src/telemetry/stats';
import { formatHostPort, parseHostPort } from '../src/util/address';
import type { DeviceInventory } from './device-inventory';
import type { MappingTable } from './mapping-table';
import { refusalReason, SessionAdmission } from './session-admission';

export interface SocketPlaneServerOptions {
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  hostId: string;
  mappings: MappingTable;
  devices: DeviceInventory;
  stats: Stats;
  log: Logger;
  connection?: ConnectionOptions;
  /** How sessions reach their devices; shared with the agent's one-hop endpoints (default: one of its own over `mappings` and `devices`). */
  admission?: SessionAdmission;
  /** Serve mTLS with these credentials, the peer's workload identity checked on every OPEN; without, plaintext (`--insecure`). */
  tls?: TlsIdentity;
  /**
   * Most connections one peer address may have that have sent a byte and not yet completed mTLS
   * (plaintext: that have sent a byte, until they close) (default 64); more are closed at their first byte.
   */
  maxConnectionsPerPeer?: number;
  /** Most TCP connections in all (default 4096): at the cap a newcomer evicts the oldest silent one, or is refused on accept. */
  maxConnections?: number;
  /** Connections per second from one peer address that send a first byte, sustained (default 10; 0 = no limit). */
  connectionRatePerPeer?: number;
  /** Such connections from one peer address at once before the rate applies (default 64: sidecars of one host redialling after an agent restart). */
  connectionBurstPerPeer?: number;
  /**
   * Silent connections (accepted, no byte yet) one peer address may hold past `silentGraceMs`
   * (default 64): beyond it a newcomer from that address evicts its oldest one.
   */
  maxSilentPerPeer?: number;
  /** The same, in all (default 1024): beyond it a newcomer evicts the oldest silent connection of anyone. */
  maxSilent?: number;
  /**
   * A silent connection younger than this (default 500 ms) is not evicted: the time a client has to
   * send its first byte (a sidecar sends its ClientHello within a millisecond of connecting).
   */
  silentGraceMs?: number;
  /** Most authenticated connections one verified identity (SPIFFE ID) may hold (default 64). */
  maxConnectionsPerIdentity?: number;
  /**
   * A TLS handshake must be complete this long after the TCP accept (default 5 s), however the
   * peer trickles its bytes: Node's own handshakeTimeout restarts on every byte. A connection
   * still silent then is closed too.
   */
  handshakeTimeoutMs?: number;
  /**
   * A handshake pending this long (default 1 s; off when not shorter than the handshake deadline)
   * is given up for a new connection from its address that the limits would refuse: before TLS a
   * sidecar and a neighbour on its address look alike, so idle neighbours must not hold its slots.
   */
  handshakeEvictAfterMs?: number;
}

const CLOSE_GRACE_MS = 1000;
export const DEFAULT_MAX_CONNECTIONS_PER_PEER = 64;
export const DEFAULT_MAX_CONNECTIONS = 4096;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_HANDSHAKE_EVICT_AFTER_MS = 1_000;

export const DEFAULT_CONNECTION_RATE_PER_PEER = 10;
export const DEFAULT_CONNECTION_BURST_PER_PEER = 64;
export const DEFAULT_MAX_SILENT_PER_PEER = 64;
export const DEFAULT_MAX_SILENT = 1024;
export const DEFAULT_SILENT_GRACE_MS = 500;
export const DEFAULT_MAX_CONNECTIONS_PER_IDENTITY = 64;

/** A connection that has not completed mTLS: its socket, peer host:port, source address, when it was accepted, its deadline. */
interface PreTlsConnection {
  socket: net.Socket;
  peer: string;
  address: string;
  at: number;
  timer: NodeJS.Timeout;
}

/** The peer learns why instead of seeing a bare close. */
function goAwayAndClose(socket: tls.TLSSocket, err: ErrorPayload): void {
  socket.end(encodeFrame(FrameType.GoAway, 0, encodeError(err)));
  socket.destroySoon();
}

/**
 * The agent's end of the socket plane: sidecars connect, and each OPEN names a mapping and the
 * workload asking. A session is accepted only for a mapping of this agent, owned by that
 * workload, whose device is present and free; the device is opened only then. A connection that
 * breaks the protocol gets a GOAWAY with the reason and is closed, without touching the others.
 *
 * With `tls`, every connection is mTLS (TLS 1.3): a peer whose certificate does not verify
 * against the CA bundle, has expired, or names no devicemesh identity is closed after its
 * handshake with a GOAWAY UNAUTHENTICATED, before any socket-plane byte is read; and every OPEN
 * must come from the workload certificate of the workload the OPEN and the mapping name.
 */
export class SocketPlaneServer {
  private readonly server: net.Server;
  private readonly tlsServer: tls.Server | undefined;
  private readonly connections = new Set<FramedConnection>();
  /** The certificate serial (upper-case hex) each TLS connection was made with. */
  private readonly serials = new Map<FramedConnection, string>();
  private revoked: ReadonlySet<string> = new Set();
  /** Every TCP connection until it closes: the global cap, checked on accept. */
  private readonly limiter: ConnectionLimiter;
  /** Connections past their first byte and not yet authenticated, per address, and their rate. */
  private readonly handshakeLimiter: ConnectionLimiter;
  /** Authenticated connections per verified identity. */
  private readonly identityLimiter: ConnectionLimiter;
  private readonly gate: AcceptGate;
  private readonly connectionsRefused: RefusalLog;
  private readonly sessionsRefused: RefusalLog;
  /** Accepted connections that have sent nothing yet. */
  private readonly silent = new AddressPool<PreTlsConnection>();
  /** Connections whose first byte came, TLS handshake under way. */
  private readonly handshakes = new AddressPool<PreTlsConnection>();
  private readonly unsubscribeRotation: () => void = () => undefined;
  private readonly admission: SessionAdmission;

  constructor(private readonly options: SocketPlaneServerOptions) {
    this.admission = options.admission ?? new SessionAdmission(options);
    this.limiter = new ConnectionLimiter({ perPeer: Infinity, total: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, ratePerPeer: 0 });
    // Before its first byte a connection costs a descriptor only, and a sidecar and a neighbour on
    // its address look alike: per-address limits and the rate are charged at the first byte.
    this.handshakeLimiter = new ConnectionLimiter({
      perPeer: options.maxConnectionsPerPeer ?? DEFAULT_MAX_CONNECTIONS_PER_PEER,
      total: Infinity,
      ratePerPeer: options.connectionRatePerPeer ?? DEFAULT_CONNECTION_RATE_PER_PEER,
      burstPerPeer: options.connectionBurstPerPeer ?? DEFAULT_CONNECTION_BURST_PER_PEER,
    });
    this.identityLimiter = new ConnectionLimiter({ perPeer: options.maxConnectionsPerIdentity ?? DEFAULT_MAX_CONNECTIONS_PER_IDENTITY, total: Infinity, ratePerPeer: 0 });
    this.connectionsRefused = new RefusalLog('socket_plane_connections_refused', options.stats, options.log);
    this.sessionsRefused = new RefusalLog('sessions_refused', options.stats, options.log);
    // One plain listener: limits apply to the raw TCP connection, and only admitted ones are handed
    // to TLS at their first byte (emit 'connection', Node's way to feed a tls.Server), so a flood costs no TLS work.
    this.server = net.createServer((socket) => this.onAccept(socket));
    this.gate = new AcceptGate(
      this.server,
      this.limiter,
      (reason, peer) => this.connectionsRefused.refuse(reason, peer, {}, 'socket plane: connection refused by a connection limit'),
      // The only refusal on accept is the global cap: the oldest silent connection of anyone makes room first.
      () => this.evictOldestSilent() || this.evictStaleHandshake(undefined),
    );
    const identity = options.tls;
    if (identity) {
      const tlsServer = tls.createServer(socketPlaneServerContext(identity.current()));
      tlsServer.on('secureConnection', (socket: tls.TLSSocket) => this.onSecureSocket(socket));
      tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: tls.TLSSocket) => this.onHandshakeError(err, socket));
      // New handshakes take the new certificate and CA; established connections keep theirs.
      this.unsubscribeRotation = identity.onRotate((material) => {
        tlsServer.setSecureContext(socketPlaneServerContext(material));
        options.log.info({ identity: formatSpiffeId(material.identity), notAfter: material.notAfter.toISOString() }, 'socket plane: certificate rotated');
      });
      this.tlsServer = tlsServer;
    }
  }

  /** TCP connections counted by the connection limits (TLS handshakes under way included). */
  get connectionCount(): number {
    return this.limiter.connections;
  }

  /** Starts listening; resolves with the bound host:port. */
  listen(): Promise<string> {
    const { host, port } = parseHostPort(this.options.listen);
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const bound = formatHostPort({ host, port: (this.server.address() as AddressInfo).port });
        this.options.log.info({ socketPlane: bound }, 'socket plane listening');
        resolve(bound);
      });
    });
  }

  /** Stops accepting and closes every connection with a GOAWAY (their sessions end with it). */
  close(): Promise<void> {
    this.unsubscribeRotation();
    for (const pending of [...this.silent.values(), ...this.handshakes.values()]) clearTimeout(pending.timer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const conns = [...this.connections];
    for (const conn of conns) conn.goAway({ code: 'UNAVAILABLE', message: 'agent shutting down' });
    // A peer that stopped reading would hold the GOAWAY flush, and the shutdown, forever.
    setTimeout(() => {
      for (const conn of conns) conn.destroy();
    }, CLOSE_GRACE_MS).unref();
    return closed;
  }

  /**
   * The control plane's list of revoked certificates: connections made with one are closed now
   * (their sessions with them), and new handshakes presenting one are refused.
   */
  revoke(serials: ReadonlySet<string>): void {
    this.revoked = serials;
    for (const [conn, serial] of this.serials) {
      if (!serials.has(serial)) continue;
      const peer = conn.remoteAddress();
      this.connectionsRefused.refuse('revoked_certificate', peer, { serial }, 'socket plane: peer certificate revoked; connection closed');
      conn.goAway({ code: 'UNAUTHENTICATED', message: `certificate ${serial} was revoked` });
      // A peer that stopped reading would hold the GOAWAY flush, and the sessions, open.
      setTimeout(() => conn.destroy(), CLOSE_GRACE_MS).unref();
    }
  }

  /**
   * Every TCP connection, TLS or not: the global cap, then the silent pool until its first byte,
   * and the handshake deadline from now.
   */
  private onAccept(socket: net.Socket): void {
    if (!this.gate.admit(socket)) return;
    this.options.stats.add('socket_plane_connections_accepted', 1);
    const address = socket.remoteAddress ?? '?';
    const peer = `${address}:${socket.remotePort ?? '?'}`;
    const timeoutMs = this.handshakeTimeoutMs;
    const timer = setTimeout(() => {
      const stage = this.silent.delete(peer) ? 'silent_timeout' : 'handshake_timeout';
      this.handshakeDone(peer);
      this.connectionsRefused.refuse(stage, peer, { timeoutMs }, 'socket plane: TLS handshake not complete in time; connection closed');
      socket.destroy();
    }, timeoutMs);
    const connection: PreTlsConnection = { socket, peer, address, at: Date.now(), timer };
    this.silent.add(peer, address, connection);
    socket.once('close', () => {
      if (this.silent.delete(peer)) clearTimeout(timer);
      this.handshakeDone(peer);
    });
    // 'readable' leaves the first bytes in the socket's buffer, where the TLS socket (or the framed connection) reads them.
    socket.once('readable', () => {
      if (socket.readableLength > 0 && this.silent.delete(peer)) this.onFirstByte(connection);
    });
    this.evictSilentBeyond(address, this.options.maxSilentPerPeer ?? DEFAULT_MAX_SILENT_PER_PEER, connection.at);
    this.evictSilentBeyond(undefined, this.options.maxSilent ?? DEFAULT_MAX_SILENT, connection.at);
  }

  /** A connection's first byte: the per-address limit and rate are charged now, and TLS (or the framing) begins. */
  private onFirstByte(connection: PreTlsConnection): void {
    const { socket, peer, address, timer } = connection;
    const refused = this.handshakeLimiter.takeOrMakeRoom(address, () => this.evictStaleHandshake(address));
    if (refused) {
      clearTimeout(timer);
      this.connectionsRefused.refuse(refused, peer, {}, 'socket plane: connection refused by a connection limit');
      socket.destroy();
      return;
    }
    if (!this.tlsServer) {
      clearTimeout(timer);
      socket.once('close', () => this.handshakeLimiter.release(address));
      this.onSocket(socket, undefined);
      return;
    }
    this.handshakes.add(peer, address, connection);
    this.tlsServer.emit('connection', socket);
  }

  private get handshakeTimeoutMs(): number {
    return this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  }

  /** The handshake of `peer` ended (or its connection closed): its deadline and its per-address count go. */
  private handshakeDone(peer: string): void {
    const pending = this.handshakes.delete(peer);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.handshakeLimiter.release(pending.address);
  }

  /**
   * Evicts the oldest silent connections of `address` (or of anyone) while it has more than `cap`;
   * none younger than the grace, which a client has to send its first byte in.
   */
  private evictSilentBeyond(address: string | undefined, cap: number, now: number): void {
    const graceMs = this.options.silentGraceMs ?? DEFAULT_SILENT_GRACE_MS;
    while (this.silent.size(address) > cap) {
      const oldest = this.silent.oldest(address);
      if (!oldest || now - oldest.at < graceMs) return;
      this.evictSilent(oldest, now);
    }
  }

  /** At the global cap: the oldest silent connection of anyone gives way, whatever its age. */
  private evictOldestSilent(): boolean {
    const oldest = this.silent.oldest();
    if (!oldest) return false;
    this.evictSilent(oldest, Date.now());
    return true;
  }

  private evictSilent(connection: PreTlsConnection, now: number): void {
    this.silent.delete(connection.peer);
    clearTimeout(connection.timer);
    this.connectionsRefused.refuse('silent_evicted', connection.peer, { ageMs: now - connection.at }, 'socket plane: connection silent since its accept, given up for a new one; connection closed');
    connection.socket.destroy();
  }

  /**
   * Closes the oldest handshake pending past the eviction age, of `address` (or of anyone), to make
   * room for a new connection; false when there is none. Only the oldest is looked at: O(1) a refusal.
   */
  private evictStaleHandshake(address: string | undefined): boolean {
    const evictAfterMs = this.options.handshakeEvictAfterMs ?? DEFAULT_HANDSHAKE_EVICT_AFTER_MS;
    if (!this.tlsServer || evictAfterMs >= this.handshakeTimeoutMs) return false;
    const pending = this.handshakes.oldest(address);
    if (!pending) return false;
    const ageMs = Date.now() - pending.at;
    if (ageMs < evictAfterMs) return false;
    this.handshakeDone(pending.peer);
    this.connectionsRefused.refuse('handshake_evicted', pending.peer, { ageMs }, 'socket plane: TLS handshake pending too long, given up for a new connection; connection closed');
    pending.socket.destroy();
    return true;
  }

  private onHandshakeError(err: Error & { code?: string }, socket: tls.TLSSocket): void {
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.handshakeDone(peer);
    // A reset is the peer leaving, or our own limit or deadline closing it (already counted).
    if (err.code === 'ECONNRESET') return;
    this.connectionsRefused.refuse(handshakeRefusal(err), peer, { code: err.code, error: err.message }, 'socket plane: TLS handshake failed');
  }

  private onSecureSocket(socket: tls.TLSSocket): void {
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.handshakeDone(peer);
    let identity: SpiffeId;
    const serial = socket.getPeerX509Certificate()?.serialNumber.toUpperCase() ?? '';
    try {
      identity = verifiedPeerIdentity(socket);
      if (this.revoked.has(serial)) throw new PeerRefusedError('revoked_certificate', `certificate ${serial} was revoked`);
    } catch (err) {
      const reason = err instanceof PeerRefusedError ? err.reason : 'untrusted_certificate';
      this.connectionsRefused.refuse(reason, peer, { error: errorMessage(err) }, 'socket plane: peer not authenticated; connection closed');
      goAwayAndClose(socket, { code: 'UNAUTHENTICATED', message: errorMessage(err) });
      return;
    }
    // A verified peer's connection is not charged to its address's rate: neighbours draining it cannot lock it out.
    this.handshakeLimiter.refund(socket.remoteAddress ?? '?');
    // From here it counts against its identity, not its address: nothing unauthenticated competes with it.
    const who = formatSpiffeId(identity);
    if (this.identityLimiter.take(who)) {
      const limit = this.identityLimiter.limits.perPeer;
      this.connectionsRefused.refuse('too_many_connections_from_identity', peer, { identity: who, limit }, 'socket plane: identity holds too many connections; connection closed');
      goAwayAndClose(socket, { code: 'RESOURCE_EXHAUSTED', message: `${who} already holds ${limit} socket-plane connections` });
      return;
    }
    socket.once('close', () => this.identityLimiter.release(who));
    this.options.log.debug({ peer, identity: who, serial }, 'socket plane: peer authenticated');
    this.onSocket(socket, identity, serial);
  }

  private onSocket(socket: net.Socket, identity: SpiffeId | undefined, serial?: string): void {
    const conn = new FramedConnection(socket, 'server', this.options.connection);
    const peer = conn.remoteAddress();
    this.connections.add(conn);
    if (serial) this.serials.set(conn, serial);
    conn.on('open', (decision: OpenDecision) => this.onOpen(conn, decision, peer, identity));
    conn.on('protocolError', (err: DeviceMeshError) => {
      this.options.stats.add('socket_plane_protocol_errors', 1);
      this.connectionsRefused.refuse(err.code.toLowerCase(), peer, { error: err.message }, 'socket-plane protocol error or limit; connection closed');
    });
    conn.on('idle', () => this.options.stats.add('socket_plane_idle_closed', 1));
    conn.on('close', () => {
      this.connections.delete(conn);
      this.serials.delete(conn);
    });
  }

  /** With TLS: the certificate must be a workload of our trust domain, the one the OPEN names. */
  private identityRefusal(identity: SpiffeId, workloadId: string): { reason: string; err: ErrorPayload } | undefined {
    const trustDomain = this.options.tls?.current().identity.trustDomain;
    if (identity.kind !== 'workload' || identity.trustDomain !== trustDomain) {
      const message = `${formatSpiffeId(identity)} is not a workload of trust domain ${trustDomain ?? '?'}`;
      return { reason: 'not_a_workload', err: { code: 'PERMISSION_DENIED', message } };
    }
    if (identity.id !== workloadId) {
      const message = `certificate names workload ${identity.id}; the OPEN asks for workload ${workloadId}`;
      return { reason: 'identity_mismatch', err: { code: 'PERMISSION_DENIED', message } };
    }
    return undefined;
  }

  private onOpen(conn: FramedConnection, decision: OpenDecision, peer: string, identity: SpiffeId | undefined): void {
    const { mappingId, workloadId } = decision.request;
    const who = identity ? formatSpiffeId(identity) : 'plaintext peer';
    const refuse = (err: ErrorPayload, reason = refusalReason(err.code)): void => {
      this.sessionsRefused.refuse(reason, peer, { identity: who, mapping: mappingId, workload: workloadId, code: err.code, error: err.message }, 'session refused');
      decision.refuse(err);
    };

    if (identity) {
      const denied = this.identityRefusal(identity, workloadId);
      if (denied) return refuse(denied.err, denied.reason);
    }
    this.admission.open(mappingId, workloadId, () => conn.isClosed).then(
      (admitted) => {
        if (!admitted) return;
        this.admission.attach(admitted.port, decision.accept(), admitted.mapping, { peer, identity: who }, decision.request.traceparent);
      },
      (err: unknown) => refuse({ code: errorCode(err, 'DEVICE_ERROR'), message: errorMessage(err) }),
    );
  }
}
