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
}

export const DEFAULT_APP_CONNECTIONS_PER_PEER = 128;
export const DEFAULT_APP_CONNECTIONS = 256;
export const DEFAULT_APP_CONNECTION_RATE_PER_PEER = 20;
export const DEFAULT_APP_CONNECTION_BURST_PER_PEER = 128;

/**
 * The connection limits of one virtual device's TCP listener, whatever its protocol (raw,
 * RFC 2217, gRPC): checked as each app connection is accepted, before any session is asked of the
 * agent, so a flood costs the agent nothing. Refusals are counted in
 * `app_connections_refused{reason}` and logged with the mapping `mappingId()` names at the time.
 */
export function gateAppConnections(server: net.Server, limits: AppListenerLimits | undefined, stats: Stats, log: Logger, mappingId: () => string): AcceptGate {
  const limiter = new ConnectionLimiter({
    perPeer: limits?.maxConnectionsPerPeer ?? DEFAULT_APP_CONNECTIONS_PER_PEER,
    total: limits?.maxConnections ?? DEFAULT_APP_CONNECTIONS,
    ratePerPeer: limits?.connectionRatePerPeer ?? DEFAULT_APP_CONNECTION_RATE_PER_PEER,
    burstPerPeer: limits?.connectionBurstPerPeer ?? DEFAULT_APP_CONNECTION_BURST_PER_PEER,
  });
  const refusals = new RefusalLog('app_connections_refused', stats, log);
  return new AcceptGate(server, limiter, (reason, peer) => refusals.refuse(reason, peer, { mapping: mappingId() }, 'app connection refused by a connection limit'));
}
