import type { QueueTimers } from '../../../../agent/exchange/command-queue';

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
}

/** A clock and timers that move only when told, for driving the command queue in unit tests. */
export class VirtualTime implements QueueTimers {
  private time = 0;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  readonly now = (): number => this.time;

  setTimeout(callback: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.time + Math.max(0, ms), seq: id, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Timers armed and not yet fired or cleared. */
  get armed(): number {
    return this.pending.size;
  }

  /** The time of the next timer, if any. */
  get next(): number | undefined {
    let at: number | undefined;
    for (const p of this.pending.values()) if (at === undefined || p.at < at) at = p.at;
    return at;
  }

  /** Moves the clock by ms, firing the timers due on the way in order of time, then of arming. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      let first: [number, Pending] | undefined;
      for (const entry of this.pending) {
        const p = entry[1];
        if (p.at <= until && (first === undefined || p.at < first[1].at || (p.at === first[1].at && p.seq < first[1].seq))) first = entry;
      }
      if (first === undefined) break;
      this.pending.delete(first[0]);
      this.time = Math.max(this.time, first[1].at);
      first[1].callback();
    }
    this.time = until;
  }
}

/** Lets promise callbacks run (resolutions are microtasks). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
