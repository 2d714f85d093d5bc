import type { RoamingMoveOverview } from '../src/admin/mesh-overview';
import type { Mapping } from '../src/proto/types';

/** Where a roaming binding last pointed, and since when no gateway has had it (0: mapped now). */
interface LastSeen {
  physicalId: string;
  goneAt: number;
}

/**
 * The moves of roaming bindings, read off the mapping table of each commit: a roaming binding
 * whose mapping points at another physical id than it last did (at once, or after a time with no
 * gateway) has moved. Kept for `describe binding` and the dashboard; the latest `capacity`, oldest first.
 */
export class RoamingMoves {
  private readonly last = new Map<string, LastSeen>();
  private readonly moves: RoamingMoveOverview[] = [];

  constructor(private readonly capacity = 200) {}

  /** One commit's mapping table; `bindings` are the names that still exist (the others are forgotten). Returns the moves it made. */
  observe(mappings: readonly Mapping[], bindings: ReadonlySet<string>, at: number): RoamingMoveOverview[] {
    const mapped = new Set<string>();
    const made: RoamingMoveOverview[] = [];
    for (const m of mappings) {
      if (!m.roaming) continue;
      mapped.add(m.binding);
      const before = this.last.get(m.binding);
      if (before && before.physicalId !== m.physicalId) {
        const move = { binding: m.binding, from: before.physicalId, to: m.physicalId, awayMs: before.goneAt > 0 ? at - before.goneAt : 0, version: m.version, at };
        made.push(move);
        this.moves.push(move);
        if (this.moves.length > this.capacity) this.moves.shift();
      }
      this.last.set(m.binding, { physicalId: m.physicalId, goneAt: 0 });
    }
    for (const [name, seen] of this.last) {
      if (!bindings.has(name)) this.last.delete(name);
      else if (!mapped.has(name) && seen.goneAt === 0) seen.goneAt = at;
    }
    return made;
  }

  list(): RoamingMoveOverview[] {
    return [...this.moves];
  }
}
