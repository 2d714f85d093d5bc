import type * as net from 'node:net';
import type { ConnectionLimiter, LimitRefusal } from './connection-limiter';

/** Node's accepted TCP handle, as far as the gate uses it. */
interface AcceptedHandle {
  getpeername(out: { address?: string; port?: number }): number;
  close(): void;
}

/** Node's listening TCP handle: libuv calls `onconnection` once per accepted connection. */
interface ListeningHandle {
  onconnection: (this: ListeningHandle, status: number, client?: AcceptedHandle) => void;
}

/**
 * Asked before a connection from `address` is refused for `reason`: true when it made room (closed
 * a connection that may be given up for a new one), so the new one is admitted uncharged.
 */
export type CrowdedListener = (address: string, reason: LimitRefusal) => boolean;

/** Called for each refused connection, with the reason and the peer's host:port. */
export type RefusalListener = (reason: LimitRefusal, peer: string) => void;

/**
 * A listener's connection limits, checked as each TCP connection is accepted. Where Node allows it,
 * the check runs on the accepted handle before Node builds a net.Socket for it: a refused
 * connection then costs an accept, a getpeername and a close, and no streams, timers or events on
 * the loop that serves the clients already admitted. That is what keeps a flood of tens of
 * thousands of connections a second from doubling their latency (test/integration/security/slow-loris).
 *
 * Node has no public hook at that point (its own `maxConnections` check sits there), so the gate
 * wraps the listening handle's accept callback. On a Node without one, `atAccept` is false and the
 * same limits apply, at a higher cost, to the net.Socket in `admit`.
 */
export class AcceptGate {
  private installed = false;
  /** Set while Node turns an admitted handle into a net.Socket: the address already counted for it. */
  private admittedAddress: string | undefined;

  constructor(
    private readonly server: net.Server,
    private readonly limiter: ConnectionLimiter,
    private readonly onRefused: RefusalListener,
    private readonly onCrowded: CrowdedListener = () => false,
  ) {
    if (server.listening) this.install();
    else server.once('listening', () => this.install());
  }

  /** Whether refusals happen on the accepted handle, before any net.Socket exists. */
  get atAccept(): boolean {
    return this.installed;
  }

  /**
   * In the server's 'connection' listener: true when `socket` is admitted (it counts against the
   * limits until it closes); false when it was refused and destroyed.
   */
  admit(socket: net.Socket): boolean {
    const counted = this.admittedAddress;
    if (counted !== undefined) {
      this.admittedAddress = undefined;
      socket.once('close', () => this.limiter.release(counted));
      return true;
    }
    const address = socket.remoteAddress ?? '?';
    if (!this.take(address)) {
      socket.once('close', () => this.limiter.release(address));
      return true;
    }
    const refused = this.limiter.take(address) ?? 'too_many_connections';
    this.onRefused(refused, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    socket.destroy();
    return false;
  }

  /** The limiter's check, with room made (and no charge) when the listener can give up a connection. */
  private take(address: string): LimitRefusal | undefined {
    return this.limiter.takeOrMakeRoom(address, (reason) => this.onCrowded(address, reason));
  }

  private install(): void {
    const handle = (this.server as unknown as { _handle?: Partial<ListeningHandle> | null })._handle;
    const accept = handle?.onconnection;
    if (!handle || typeof accept !== 'function') return;
    const gate = this;
    handle.onconnection = function (this: ListeningHandle, status: number, client?: AcceptedHandle): void {
      if (status < 0 || !client) {
        accept.call(this, status, client);
        return;
      }
      const peer: { address?: string; port?: number } = {};
      client.getpeername(peer);
      const address = peer.address ?? '?';
      const refused = gate.take(address);
      if (refused) {
        client.close();
        gate.onRefused(refused, `${address}:${peer.port ?? '?'}`);
        return;
      }
      // Node emits 'connection' synchronously from here, so `admit` finds the address it was counted under.
      gate.admittedAddress = address;
      try {
        accept.call(this, status, client);
      } finally {
        if (gate.admittedAddress !== undefined) {
          // No 'connection' came (Node refused it itself, e.g. maxConnections): nothing holds the count.
          gate.limiter.release(address);
          gate.admittedAddress = undefined;
        }
      }
    };
    this.installed = true;
  }
}
