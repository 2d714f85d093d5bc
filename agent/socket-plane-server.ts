import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { isDeepStrictEqual } from 'node:util';
import { DeviceMeshError, errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import type { Mapping } from '../src/proto/types';
import { AcceptGate } from '../src/security/accept-gate';
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
import { deviceConfig } from './device/device-config';
import type { MappingTable } from './mapping-table';

export interface SocketPlaneServerOptions {
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  hostId: string;
  mappings: MappingTable;
  devices: DeviceInventory;
  stats: Stats;
  log: Logger;
  connection?: ConnectionOptions;
  /** Serve mTLS with these credentials, the peer's workload identity checked on every OPEN; without, plaintext (`--insecure`). */
  tls?: TlsIdentity;
  /** Most connections one peer address may hold (default 64); more are closed on accept. */
  maxConnectionsPerPeer?: number;
  /** Most connections in all (default 4096). */
  maxConnections?: number;
  /** New connections per second from one peer address, sustained (default 10; 0 = no limit). */
  connectionRatePerPeer?: number;
  /** New connections from one peer address at once before the rate applies (default 64: sidecars of one host redialling after an agent restart). */
  connectionBurstPerPeer?: number;
  /**
   * A TLS handshake must be complete this long after the TCP accept (default 5 s), however the
   * peer trickles its bytes: Node's own handshakeTimeout restarts on every byte.
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

/** A TLS handshake under way: its socket, its source address, when it was accepted, its deadline. */
interface PendingHandshake {
  socket: net.Socket;
  address: string;
  at: number;
  timer: NodeJS.Timeout;
}
export const DEFAULT_CONNECTION_RATE_PER_PEER = 10;
export const DEFAULT_CONNECTION_BURST_PER_PEER = 64;

/** Label of `sessions_refused` per refusal code. */
const REFUSAL_REASON: Partial<Record<string, string>> = {
  NOT_FOUND: 'unknown_mapping',
  PERMISSION_DENIED: 'permission_denied',
  UNAVAILABLE: 'device_absent',
  RESOURCE_EXHAUSTED: 'in_use',
  DEVICE_ERROR: 'device_error',
};

function withdrawn(mappingId: string): ErrorPayload {
  return { code: 'NOT_FOUND', message: `binding withdrawn (mapping ${mappingId})` };
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
  private readonly limiter: ConnectionLimiter;
  private readonly gate: AcceptGate;
  private readonly connectionsRefused: RefusalLog;
  private readonly sessionsRefused: RefusalLog;
  /** Pending TLS handshakes by remote host:port, oldest first. */
  private readonly handshakes = new Map<string, PendingHandshake>();
  /** The same, by source address: the oldest of an address is its first. */
  private readonly handshakesByAddress = new Map<string, Map<string, PendingHandshake>>();
  private readonly unsubscribeRotation: () => void = () => undefined;
  private active = 0;
  /** Configuration checks and changes under way for the last mapping update, each with its refusal. */
  private checks: Array<Promise<string | undefined>> = [];

  constructor(private readonly options: SocketPlaneServerOptions) {
    this.limiter = new ConnectionLimiter({
      perPeer: options.maxConnectionsPerPeer ?? DEFAULT_MAX_CONNECTIONS_PER_PEER,
      total: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      ratePerPeer: options.connectionRatePerPeer ?? DEFAULT_CONNECTION_RATE_PER_PEER,
      burstPerPeer: options.connectionBurstPerPeer ?? DEFAULT_CONNECTION_BURST_PER_PEER,
    });
    this.connectionsRefused = new RefusalLog('socket_plane_connections_refused', options.stats, options.log);
    this.sessionsRefused = new RefusalLog('sessions_refused', options.stats, options.log);
    // One plain listener: limits apply to the raw TCP connection, and only admitted ones are handed
    // to TLS (emit 'connection', Node's way to feed a tls.Server), so a flood costs no TLS work.
    this.server = net.createServer((socket) => this.onAccept(socket));
    this.gate = new AcceptGate(
      this.server,
      this.limiter,
      (reason, peer) => this.connectionsRefused.refuse(reason, peer, {}, 'socket plane: connection refused by a connection limit'),
      (address, reason) => this.evictStaleHandshake(reason === 'too_many_connections' ? undefined : address),
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
    options.mappings.on('removed', (m: Mapping) => this.onMappingRemoved(m));
    options.mappings.on('changed', (m: Mapping, old: Mapping) => this.onMappingChanged(m, old));
    options.mappings.on('added', (m: Mapping) => this.checks.push(this.check(m)));
    options.stats.set('sessions_active', 0);
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
    for (const pending of this.handshakes.values()) clearTimeout(pending.timer);
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

  /** Every TCP connection, TLS or not: the connection limits, and the handshake deadline. */
  private onAccept(socket: net.Socket): void {
    if (!this.gate.admit(socket)) return;
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (!this.tlsServer) {
      this.onSocket(socket, undefined);
      return;
    }
    const timeoutMs = this.handshakeTimeoutMs;
    const timer = setTimeout(() => {
      this.handshakeDone(peer);
      this.connectionsRefused.refuse('handshake_timeout', peer, { timeoutMs }, 'socket plane: TLS handshake not complete in time; connection closed');
      socket.destroy();
    }, timeoutMs);
    const address = socket.remoteAddress ?? '?';
    const pending: PendingHandshake = { socket, address, at: Date.now(), timer };
    this.handshakes.set(peer, pending);
    let ofAddress = this.handshakesByAddress.get(address);
    if (!ofAddress) {
      ofAddress = new Map();
      this.handshakesByAddress.set(address, ofAddress);
    }
    ofAddress.set(peer, pending);
    socket.once('close', () => this.handshakeDone(peer));
    this.tlsServer.emit('connection', socket);
  }

  private get handshakeTimeoutMs(): number {
    return this.options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  }

  private handshakeDone(peer: string): void {
    const pending = this.handshakes.get(peer);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.handshakes.delete(peer);
    const ofAddress = this.handshakesByAddress.get(pending.address);
    ofAddress?.delete(peer);
    if (ofAddress?.size === 0) this.handshakesByAddress.delete(pending.address);
  }

  /**
   * Closes the oldest handshake pending past the eviction age, of `address` (or of anyone), to make
   * room for a new connection; false when there is none. Only the oldest is looked at: O(1) a refusal.
   */
  private evictStaleHandshake(address: string | undefined): boolean {
    const evictAfterMs = this.options.handshakeEvictAfterMs ?? DEFAULT_HANDSHAKE_EVICT_AFTER_MS;
    if (!this.tlsServer || evictAfterMs >= this.handshakeTimeoutMs) return false;
    const pool = address === undefined ? this.handshakes : this.handshakesByAddress.get(address);
    const oldest = pool?.entries().next().value;
    if (!oldest) return false;
    const [peer, pending] = oldest;
    const ageMs = Date.now() - pending.at;
    if (ageMs < evictAfterMs) return false;
    this.handshakeDone(peer);
    this.connectionsRefused.refuse('handshake_evicted', peer, { ageMs }, 'socket plane: TLS handshake pending too long, given up for a new connection; connection closed');
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
      // The sidecar learns why instead of seeing a bare close.
      socket.end(encodeFrame(FrameType.GoAway, 0, encodeError({ code: 'UNAUTHENTICATED', message: errorMessage(err) })));
      socket.destroySoon();
      return;
    }
    // A verified peer's connection is not charged to its address's rate: neighbours draining it cannot lock it out.
    this.limiter.refund(socket.remoteAddress ?? '?');
    this.options.log.debug({ peer, identity: formatSpiffeId(identity), serial }, 'socket plane: peer authenticated');
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
    const { mappings, devices, log, stats } = this.options;
    const who = identity ? formatSpiffeId(identity) : 'plaintext peer';
    const refuse = (err: ErrorPayload, reason = REFUSAL_REASON[err.code] ?? err.code.toLowerCase()): void => {
      this.sessionsRefused.refuse(reason, peer, { identity: who, mapping: mappingId, workload: workloadId, code: err.code, error: err.message }, 'session refused');
      decision.refuse(err);
    };

    if (identity) {
      const denied = this.identityRefusal(identity, workloadId);
      if (denied) return refuse(denied.err, denied.reason);
    }
    const mapping = mappings.get(mappingId);
    if (!mapping) return refuse({ code: 'NOT_FOUND', message: `unknown mapping ${mappingId}` });
    if (mapping.workloadId !== workloadId) {
      return refuse({ code: 'PERMISSION_DENIED', message: `mapping ${mappingId} does not belong to workload ${workloadId}` });
    }
    const device = devices.get(mapping.devicePath);
    if (!device?.present) {
      return refuse({ code: 'UNAVAILABLE', message: `device ${mapping.devicePath} is not present on host ${this.options.hostId}` });
    }

    device.host.open(mapping).then(
      (port) => {
        // The connection or the mapping may have gone while the device opened.
        if (conn.isClosed) {
          port.destroy();
          return;
        }
        const current = mappings.get(mappingId);
        if (!current || current.workloadId !== workloadId || current.devicePath !== mapping.devicePath) {
          port.destroy();
          refuse(withdrawn(mappingId));
          return;
        }
        const session = decision.accept();
        port.attach(session, decision.request.traceparent);
        stats.add('sessions_opened', 1);
        stats.set('sessions_active', ++this.active);
        const ids = { mapping: mappingId, binding: mapping.binding, workload: workloadId, device: mapping.devicePath };
        log.info({ peer, identity: who, ...ids, session: session.id }, 'session opened');
        session.once('close', (err?: DeviceMeshError) => {
          stats.set('sessions_active', --this.active);
          log.info({ peer, ...ids, session: session.id, code: err?.code, error: err?.message }, 'session closed');
        });
      },
      (err: unknown) => {
        const code = err instanceof DeviceMeshError ? err.code : 'DEVICE_ERROR';
        refuse({ code, message: errorMessage(err) });
      },
    );
  }

  /**
   * Waits for the checks and changes the last mapping update started and returns what the
   * drivers refused, each as "mapping <id>: <reason>": the discovery stream NACKs with them.
   */
  async settle(): Promise<string[]> {
    const checks = this.checks;
    this.checks = [];
    return (await Promise.all(checks)).filter((r): r is string => r !== undefined);
  }

  /** The driver's verdict on a mapping's configuration, while its device is here to ask. */
  private check(m: Mapping): Promise<string | undefined> {
    const record = this.options.devices.get(m.devicePath);
    if (!record) return Promise.resolve(undefined);
    try {
      record.driver.validate(deviceConfig(m));
      return Promise.resolve(undefined);
    } catch (err) {
      return Promise.resolve(`mapping ${m.id}: ${errorMessage(err)}`);
    }
  }

  private onMappingRemoved(m: Mapping): void {
    this.options.devices.get(m.devicePath)?.host.resetMapping(m.id, withdrawn(m.id));
  }

  private onMappingChanged(m: Mapping, old: Mapping): void {
    const host = this.options.devices.get(old.devicePath)?.host;
    if (!host) return;
    if (old.devicePath !== m.devicePath || old.workloadId !== m.workloadId) {
      host.resetMapping(m.id, withdrawn(m.id));
      return;
    }
    host.retune(m);
    if (isDeepStrictEqual(old.serial, m.serial) && isDeepStrictEqual(old.settings, m.settings)) return;
    const checked = this.check(m).then(async (refused) => {
      if (refused) return refused;
      try {
        if (await host.update(m)) this.options.log.info({ mapping: m.id, device: m.devicePath, serial: m.serial, settings: m.settings }, 'device configuration updated');
        return undefined;
      } catch (err) {
        this.options.log.warn({ mapping: m.id, device: m.devicePath, error: errorMessage(err) }, 'device refused the configuration');
        return `mapping ${m.id}: device ${m.devicePath} refused the configuration: ${errorMessage(err)}`;
      }
    });
    this.checks.push(checked);
  }
}
