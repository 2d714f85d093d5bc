import * as net from 'node:net';
import * as tls from 'node:tls';
import { UnavailableError } from '../src/errors';
import type { Logger } from '../src/log';
import { FramedConnection } from '../src/socket-plane/connection';
import { socketPlaneClientOptions } from '../src/security/socket-plane-tls';
import { formatSpiffeId, type SpiffeId } from '../src/security/spiffe-id';
import type { TlsIdentity } from '../src/security/tls-identity';
import { parseHostPort } from '../src/util/address';
import { Backoff } from '../src/util/backoff';

/** An agent that could not be reached is not dialled again before its backoff delay. */
interface Unreachable {
  backoff: Backoff;
  until: number;
}

/** How long an agent may take to accept the TCP connection before its pending opens fail. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * One socket-plane connection per agent address, shared by every session to that agent. Made on
 * first use and forgotten when it closes, so the next app connection after an agent restart
 * dials again; sessions on a dead connection are aborted by the connection itself. A dial that
 * fails puts the agent in backoff (exponential with jitter, as gRPC reconnects): until it ends,
 * app connections are refused at once instead of each dialling a dead address.
 *
 * With `tls`, each dial is mTLS (TLS 1.3) with the credentials current at that moment, and the
 * agent must present the certificate of the host the mapping names (spiffe://<td>/host/<id>).
 * A rotation retires the live connections: their sessions carry on to their end, new sessions
 * go over a new dial with the new certificate, and a retired connection closes once drained.
 */
export class AgentPool {
  private readonly connections = new Map<string, FramedConnection>();
  private readonly unreachable = new Map<string, Unreachable>();
  /** Connections made with credentials since rotated, kept for their sessions only. */
  private readonly retired = new Set<FramedConnection>();
  private readonly unsubscribeRotation: () => void;

  constructor(
    private readonly log: Logger,
    /** mTLS to the agents with these credentials; without, plaintext (`--insecure`). */
    readonly options: { tls?: TlsIdentity } = {},
  ) {
    this.unsubscribeRotation = options.tls?.onRotate(() => this.retireAll()) ?? ((): void => undefined);
  }

  private retireAll(): void {
    for (const connection of this.connections.values()) {
      if (connection.sessionCount === 0) {
        connection.goAway({ code: 'UNAVAILABLE', message: 'certificate rotated; this connection is replaced' });
        continue;
      }
      this.retired.add(connection);
      connection.once('drained', () => connection.goAway({ code: 'UNAVAILABLE', message: 'certificate rotated; last session ended' }));
      connection.once('close', () => this.retired.delete(connection));
    }
    this.log.info({ retired: this.retired.size }, 'certificate rotated: new sessions dial the agents anew');
    this.connections.clear();
  }

  /** The live connection to `address` (host:port) of host `hostId`'s agent, dialling it if there is none. */
  connection(address: string, hostId: string): FramedConnection {
    const existing = this.connections.get(address);
    if (existing && !existing.isClosed) return existing;
    const down = this.unreachable.get(address);
    const wait = down ? down.until - Date.now() : 0;
    if (wait > 0) throw new UnavailableError(`agent ${address} is unreachable; dialling again in ${Math.ceil(wait)} ms`);
    const { host, port } = parseHostPort(address);
    const material = this.options.tls?.current();
    let socket: net.Socket;
    if (material) {
      const agent: SpiffeId = { trustDomain: material.identity.trustDomain, kind: 'host', id: hostId };
      socket = tls.connect({ host, port, ...socketPlaneClientOptions(material, agent) });
      this.log.debug({ agent: address, expect: formatSpiffeId(agent) }, 'dialling agent over mTLS');
    } else {
      socket = net.connect({ host, port, noDelay: true });
    }
    const timer = setTimeout(
      () => socket.destroy(new UnavailableError(`agent ${address} did not accept a connection within ${CONNECT_TIMEOUT_MS} ms`)),
      CONNECT_TIMEOUT_MS,
    );
    let connected = false;
    socket.once(material ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(timer);
      this.unreachable.delete(address);
    });
    // On 'error' already (before the connection fails its opens), and on 'close' for a timeout;
    // the one failure is counted once.
    const failed = (): void => {
      clearTimeout(timer);
      if (connected) return;
      const entry = this.unreachable.get(address) ?? { backoff: new Backoff(100, 5000), until: 0 };
      if (entry.until > Date.now()) return;
      entry.until = Date.now() + entry.backoff.next();
      this.unreachable.set(address, entry);
    };
    socket.once('error', failed);
    socket.once('close', failed);
    const connection = new FramedConnection(socket, 'client');
    connection.once('close', (err: Error | undefined) => {
      if (this.connections.get(address) === connection) this.connections.delete(address);
      this.log.info({ agent: address, reason: err?.message }, 'socket-plane connection to agent closed');
    });
    this.connections.set(address, connection);
    this.log.debug({ agent: address }, 'dialling agent');
    return connection;
  }

  /** Closes idle connections to agents no mapping leads to any more; busy ones stay for their sessions. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, connection] of this.connections) {
      if (!addresses.has(address) && connection.sessionCount === 0) {
        this.connections.delete(address);
        connection.goAway({ code: 'UNAVAILABLE', message: 'no mapping leads to this agent any more' });
      }
    }
  }

  /** Closes every connection (their sessions end with it). */
  close(): void {
    this.unsubscribeRotation();
    for (const connection of [...this.connections.values(), ...this.retired]) {
      connection.goAway({ code: 'UNAVAILABLE', message: 'sidecar shutting down' });
    }
    this.connections.clear();
    this.retired.clear();
  }
}
