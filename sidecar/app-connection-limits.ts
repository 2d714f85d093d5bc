import type * as net from 'node:net';
import type { Logger } from '../src/log';
import { AcceptGate } from '../src/security/accept-gate';
import { ConnectionLimiter } from '../src/security/connection-limiter';
import { RefusalLog } from '../src/security/refusal-log';
import type { Stats } from '../src/telemetry/stats';

/** Limits of each app listener, against a client that would starve the others. */
export interface AppListenerLimits {
  /** Most connections one app address may hold on one virtual device (default 128). */
  maxConnectionsPerPeer?: number;
  /** Most connections on one virtual device (default 256). */
  maxConnections?: number;
  /** New connections per second from one app address, sustained (default 20; 0 = no limit). */
  connectionRatePerPeer?: number;
  /** New connections from one app address at once before the rate applies (default 128: a workload's apps starting together). */
  connectionBurstPerPeer?: number;
  /** RFC 2217: a Telnet subnegotiation must end (IAC SE) within this (default 5 s). */
  subnegotiationTimeoutMs?: number;
  /** gRPC: the client's HTTP/2 connection preface must have arrived this long after the accept (default 10 s). */
  grpcPrefaceTimeoutMs?: number;
}

export const DEFAULT_APP_CONNECTIONS_PER_PEER = 128;
export const DEFAULT_APP_CONNECTIONS = 256;
export const DEFAULT_APP_CONNECTION_RATE_PER_PEER = 20;
export const DEFAULT_APP_CONNECTION_BURST_PER_PEER = 128;
export const DEFAULT_GRPC_PREFACE_TIMEOUT_MS = 10_000;
/** "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113, 3.4). */
const HTTP2_PREFACE_BYTES = 24;

/**
 * The connection limits of one virtual device's TCP listener, whatever its protocol (raw,
 * RFC 2217, gRPC): checked as each app connection is accepted, before any session is asked of the
 * agent, so a flood costs the agent nothing. Refusals are counted in
 * `app_connections_refused{reason}` and logged with the mapping `mappingId()` names at the time.
 */
export class AppConnectionGate {
  private readonly gate: AcceptGate;
  private readonly refusals: RefusalLog;

  constructor(
    server: net.Server,
    private readonly limits: AppListenerLimits | undefined,
    stats: Stats,
    log: Logger,
    private readonly mappingId: () => string,
  ) {
    const limiter = new ConnectionLimiter({
      perPeer: limits?.maxConnectionsPerPeer ?? DEFAULT_APP_CONNECTIONS_PER_PEER,
      total: limits?.maxConnections ?? DEFAULT_APP_CONNECTIONS,
      ratePerPeer: limits?.connectionRatePerPeer ?? DEFAULT_APP_CONNECTION_RATE_PER_PEER,
      burstPerPeer: limits?.connectionBurstPerPeer ?? DEFAULT_APP_CONNECTION_BURST_PER_PEER,
    });
    this.refusals = new RefusalLog('app_connections_refused', stats, log);
    this.gate = new AcceptGate(server, limiter, (reason, peer) => this.refusals.refuse(reason, peer, { mapping: mappingId() }, 'app connection refused by a connection limit'));
  }

  /** In the listener's 'connection' handler: false when `socket` was refused (and destroyed). */
  admit(socket: net.Socket): boolean {
    return this.gate.admit(socket);
  }

  /**
   * gRPC: closes `socket` unless its HTTP/2 preface has arrived by the deadline. A raw or RFC 2217
   * app may rightly connect and only listen; an HTTP/2 client speaks first, so one that does not
   * holds a slot of its address for nothing. One timer per connection, not per byte.
   */
  requireHttp2Preface(socket: net.Socket): void {
    const timeoutMs = this.limits?.grpcPrefaceTimeoutMs ?? DEFAULT_GRPC_PREFACE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      if (socket.bytesRead >= HTTP2_PREFACE_BYTES) return;
      this.refusals.refuse('preface_timeout', `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, { mapping: this.mappingId(), timeoutMs }, 'gRPC app connection sent no HTTP/2 preface in time; closed');
      socket.destroy();
    }, timeoutMs);
    socket.once('close', () => clearTimeout(timer));
  }
}
