import type { Logger } from '../log';
import type { Stats } from '../telemetry/stats';

/** One log line per (reason, peer) per window at most: a flood is counted in full, logged in summary. */
export const REFUSAL_LOG_WINDOW_MS = 10_000;

/**
 * Counts every refusal (a connection or session turned away, a peer closed by a limit) under
 * `counter{reason}` and logs it, but at most once per reason and peer address per window, with
 * how many were not logged since: an attacker opening thousands of connections cannot flood the
 * log, and an operator still sees who and why.
 */
export class RefusalLog {
  private readonly lastLogged = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly counter: string,
    private readonly stats: Stats,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  refuse(reason: string, peer: string, fields: Record<string, unknown>, message: string): void {
    this.stats.add(this.counter, 1, { reason });
    const key = `${reason}|${hostOf(peer)}`;
    const t = this.now();
    const last = this.lastLogged.get(key);
    if (last && t - last.at < REFUSAL_LOG_WINDOW_MS) {
      last.suppressed += 1;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.lastLogged.set(key, { at: t, suppressed: 0 });
    if (this.lastLogged.size > 1024) this.forgetBefore(t - REFUSAL_LOG_WINDOW_MS);
    this.log.warn({ peer, reason, ...fields, ...(suppressed > 0 ? { alsoRefusedSinceLastLog: suppressed } : {}) }, message);
  }

  private forgetBefore(t: number): void {
    for (const [key, entry] of this.lastLogged) if (entry.at < t) this.lastLogged.delete(key);
  }
}

/** The address part of host:port (IPv6 included), what per-peer limits and logs key on. */
export function hostOf(peer: string): string {
  const i = peer.lastIndexOf(':');
  return i < 0 ? peer : peer.slice(0, i);
}
