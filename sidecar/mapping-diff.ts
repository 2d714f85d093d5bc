import type { Mapping } from '../src/proto/types';

export interface ChangedMapping {
  previous: Mapping;
  next: Mapping;
  /** The virtual device moves (listen address, pty path) or changes protocol: it needs a new listener, and its live connections end. */
  listenChanged: boolean;
}

/** What it takes to go from one mapping set to the next, by mapping id. */
export interface MappingDiff {
  added: Mapping[];
  changed: ChangedMapping[];
  removed: Mapping[];
}

/** Pure: previous vs next mapping sets, keyed by id. Identical mappings appear nowhere. */
export function diffMappings(previous: ReadonlyMap<string, Mapping>, next: ReadonlyMap<string, Mapping>): MappingDiff {
  const diff: MappingDiff = { added: [], changed: [], removed: [] };
  for (const [id, mapping] of next) {
    const before = previous.get(id);
    if (!before) diff.added.push(mapping);
    else if (!sameValue(before, mapping)) {
      diff.changed.push({ previous: before, next: mapping, listenChanged: before.virtual?.listen !== mapping.virtual?.listen || before.virtual?.path !== mapping.virtual?.path || before.virtual?.protocol !== mapping.virtual?.protocol });
    }
  }
  for (const [id, mapping] of previous) if (!next.has(id)) diff.removed.push(mapping);
  return diff;
}

/** Structural equality of decoded proto objects (plain JSON-like values), key order ignored. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
