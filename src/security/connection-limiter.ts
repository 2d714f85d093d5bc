import type * as net from 'node:net';

/** Why a connection was turned away by a ConnectionLimiter: the `reason` label. */
export type LimitRefusal = 'too_many_connections_from_peer' | 'too_many_connections';

export interface ConnectionLimits {
  /** Most connections one peer address may hold at once. */
  perPeer: number;
  /** Most connections at once in all. */
  total: number;
}

/**
 * Connections per peer address and in all, for one listening socket. Checked when the TCP
 * connection is accepted, before any TLS or protocol work is spent on it; a connection counts
 * until its socket closes.
 */
export class ConnectionLimiter {
  private readonly perPeer = new Map<string, number>();
  private total = 0;

  constructor(readonly limits: ConnectionLimits) {}

  /** Counts `socket` in and returns undefined, or returns why it must be refused (not counted). */
  admit(socket: net.Socket): LimitRefusal | undefined {
    const peer = socket.remoteAddress ?? '?';
    const n = this.perPeer.get(peer) ?? 0;
    if (n >= this.limits.perPeer) return 'too_many_connections_from_peer';
    if (this.total >= this.limits.total) return 'too_many_connections';
    this.perPeer.set(peer, n + 1);
    this.total += 1;
    socket.once('close', () => {
      this.total -= 1;
      const left = (this.perPeer.get(peer) ?? 1) - 1;
      if (left > 0) this.perPeer.set(peer, left);
      else this.perPeer.delete(peer);
    });
    return undefined;
  }

  get connections(): number {
    return this.total;
  }
}
