/** One held app connection's move, as /config_dump shows it. */
export interface RoamingMove {
  mapping: string;
  /** host/device the session was on when it was lost. */
  from: string;
  /** Where it resumed; empty when the hold expired. */
  to: string;
  outcome: 'resumed' | 'expired' | 'ended';
  /** Why the session on `from` ended. */
  cause: string;
  heldBytes: number;
  heldMs: number;
  at: string;
}

/** Moves kept for /config_dump: enough to see the latest ones, never growing with traffic. */
const KEPT = 32;

/** The sidecar's latest roaming moves, newest last. */
export class RoamingMoves {
  private readonly moves: RoamingMove[] = [];

  record(move: RoamingMove): void {
    this.moves.push(move);
    if (this.moves.length > KEPT) this.moves.shift();
  }

  list(): RoamingMove[] {
    return this.moves.map((m) => ({ ...m }));
  }
}
