import type * as net from 'node:net';
import { TokenBucket } from '../limits/token-bucket';

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
  /** New connections from the peer: rate `ratePerPeer` (0: unlimited), burst `burstPerPeer`. */
  rate: TokenBucket;
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
    const { perPeer, total } = this.limits;
    let peer = this.peers.get(address);
    if (!peer) {
      if (this.peers.size >= MAX_REMEMBERED) this.forgetIdle();
      peer = this.remember(address, 0);
    }
    if (peer.rate.available() < 1) return 'connection_rate_from_peer';
    if (peer.open >= perPeer) return 'too_many_connections_from_peer';
    if (this.total >= total) return 'too_many_connections';
    peer.rate.take(1);
    peer.open += 1;
    this.total += 1;
    return undefined;
  }

  /**
   * `take`, except that when `makeRoom(reason)` closes a connection that may be given up for a new
   * one (and says so), the new one is counted in its place uncharged instead of being refused.
   */
  takeOrMakeRoom(address: string, makeRoom: (reason: LimitRefusal) => boolean): LimitRefusal | undefined {
    const refused = this.take(address);
    if (!refused || !makeRoom(refused)) return refused;
    this.takeOver(address);
    return undefined;
  }

  /**
   * Counts one more connection from `address` without checking the limits or charging the rate:
   * for a connection admitted in place of one just evicted (whose close releases its own count).
   */
  takeOver(address: string): void {
    const peer = this.peers.get(address);
    if (!peer) this.remember(address, 1);
    else peer.open += 1;
    this.total += 1;
  }

  /** Gives back the rate token `address` was charged: its connection proved itself (a verified peer). */
  refund(address: string): void {
    const peer = this.peers.get(address);
    peer?.rate.give(1);
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

  private remember(address: string, open: number): PeerState {
    // A burst of 0 is the bucket's default: one second's worth of the rate.
    const peer = { open, rate: new TokenBucket(this.limits.ratePerPeer, this.limits.burstPerPeer ?? 0, this.now) };
    this.peers.set(address, peer);
    return peer;
  }

  private forgetIdle(): void {
    for (const [address, peer] of this.peers) {
      if (peer.open === 0 && peer.rate.available() >= peer.rate.burst) this.peers.delete(address);
    }
  }
}
