import type * as net from 'node:net';

/** Why a connection was turned away by a ConnectionLimiter: the `reason` label. */
export type LimitRefusal = 'too_many_connections_from_peer' | 'too_many_connections' | 'connection_rate_from_peer';

export interface ConnectionLimits {
  /** Most connections one peer address may hold at once. */
  perPeer: number;
  /** Most connections at once in all. */
  total: number;
  /** New connections per second one peer address may make, sustained (0: no limit). */
  ratePerPeer: number;
  /** New connections one peer address may make at once before the rate applies (default: `ratePerPeer`). */
  burstPerPeer?: number;
}

interface PeerState {
  open: number;
  /** Token bucket of new connections: tokens left, as of `at`. */
  tokens: number;
  at: number;
}

/** Peers remembered for their rate only; beyond this, those with a full bucket and no connection are forgotten. */
const MAX_REMEMBERED = 4096;

/**
 * Connections per peer address and in all, and the rate of new ones per peer, for one listening
 * socket. Checked when the TCP connection is accepted, before any TLS or protocol work is spent on
 * it (a refusal costs an accept and a close); a connection counts until its socket closes.
 */
export class ConnectionLimiter {
  private readonly peers = new Map<string, PeerState>();
  private total = 0;

  constructor(
    readonly limits: ConnectionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts `socket` in and returns undefined, or returns why it must be refused (not counted). */
  admit(socket: net.Socket): LimitRefusal | undefined {
    const address = socket.remoteAddress ?? '?';
    const refused = this.take(address);
    if (refused) return refused;
    socket.once('close', () => this.release(address));
    return undefined;
  }

  /** The accounting of `admit` without a socket: undefined when `address` may open one more. */
  take(address: string): LimitRefusal | undefined {
    const t = this.now();
    const { perPeer, total, ratePerPeer } = this.limits;
    const burst = this.burst;
    let peer = this.peers.get(address);
    if (!peer) {
      if (this.peers.size >= MAX_REMEMBERED) this.forgetIdle(t);
      peer = { open: 0, tokens: burst, at: t };
      this.peers.set(address, peer);
    }
    if (ratePerPeer > 0) {
      peer.tokens = Math.min(burst, peer.tokens + ((t - peer.at) / 1000) * ratePerPeer);
      peer.at = t;
      if (peer.tokens < 1) return 'connection_rate_from_peer';
    }
    if (peer.open >= perPeer) return 'too_many_connections_from_peer';
    if (this.total >= total) return 'too_many_connections';
    if (ratePerPeer > 0) peer.tokens -= 1;
    peer.open += 1;
    this.total += 1;
    return undefined;
  }

  /**
   * Counts one more connection from `address` without checking the limits or charging the rate:
   * for a connection admitted in place of one just evicted (whose close releases its own count).
   */
  takeOver(address: string): void {
    const peer = this.peers.get(address);
    if (!peer) {
      this.peers.set(address, { open: 1, tokens: this.burst, at: this.now() });
    } else {
      peer.open += 1;
    }
    this.total += 1;
  }

  /** Gives back the rate token `address` was charged: its connection proved itself (a verified peer). */
  refund(address: string): void {
    const peer = this.peers.get(address);
    if (peer && this.limits.ratePerPeer > 0) peer.tokens = Math.min(this.burst, peer.tokens + 1);
  }

  release(address: string): void {
    const peer = this.peers.get(address);
    if (!peer || peer.open === 0) return;
    peer.open -= 1;
    this.total -= 1;
  }

  get connections(): number {
    return this.total;
  }

  private get burst(): number {
    return this.limits.burstPerPeer ?? this.limits.ratePerPeer;
  }

  private forgetIdle(t: number): void {
    const { ratePerPeer } = this.limits;
    for (const [address, peer] of this.peers) {
      const full = ratePerPeer === 0 || peer.tokens + ((t - peer.at) / 1000) * ratePerPeer >= this.burst;
      if (peer.open === 0 && full) this.peers.delete(address);
    }
  }
}
