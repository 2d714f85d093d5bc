import { DeviceMeshError } from '../src/errors';
import { compareStrings } from './canonical';

const REMOVED = Symbol('removed');
type Slot<V> = V | typeof REMOVED;

/** A mark in an overlay's journal: `rollback` to it undoes every write made since. */
export type JournalMark = number;

/**
 * A map written as a layer over a base map that readers of the committed state share: a commit
 * costs what it changes, not a copy of the whole map. Writes are journaled so that one refused
 * job of a batch can be undone; `fold` writes the layer into the base once the batch is
 * durable, after which overlays still reading that base see the new content (the committed
 * state they stood for has been replaced by then).
 */
export class OverlayMap<K, V> {
  private readonly layer = new Map<K, Slot<V>>();
  private readonly journal: { key: K; had: boolean; prior: Slot<V> | undefined }[] = [];

  constructor(private readonly base: Map<K, V> = new Map()) {}

  /** A new overlay on this one's content, which must be committed: folded, or never written. */
  derive(): OverlayMap<K, V> {
    // An overlay on a draft would see its base change under it when the draft is folded.
    if (this.layer.size > 0) throw new DeviceMeshError('INTERNAL', 'overlay map: cannot derive from a draft that has not been folded');
    return new OverlayMap(this.base);
  }

  get(key: K): V | undefined {
    const slot = this.layer.get(key);
    if (slot === undefined) return this.base.get(key);
    return slot === REMOVED ? undefined : slot;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): void {
    this.record(key);
    this.layer.set(key, value);
  }

  delete(key: K): boolean {
    if (!this.has(key)) return false;
    this.record(key);
    this.layer.set(key, REMOVED);
    return true;
  }

  get size(): number {
    let size = this.base.size;
    for (const [key, slot] of this.layer) {
      const inBase = this.base.has(key);
      if (slot === REMOVED && inBase) size -= 1;
      else if (slot !== REMOVED && !inBase) size += 1;
    }
    return size;
  }

  *values(): IterableIterator<V> {
    for (const [key, value] of this.base) if (!this.layer.has(key)) yield value;
    for (const slot of this.layer.values()) if (slot !== REMOVED) yield slot;
  }

  /** Keys whose value differs from the base, i.e. what this overlay changes. */
  changedKeys(): K[] {
    return [...this.layer.keys()].filter((key) => this.get(key) !== this.base.get(key));
  }

  /** The value the base holds, i.e. before this overlay's writes. */
  baseValue(key: K): V | undefined {
    return this.base.get(key);
  }

  mark(): JournalMark {
    return this.journal.length;
  }

  rollback(mark: JournalMark): void {
    while (this.journal.length > mark) {
      const entry = this.journal.pop() as (typeof this.journal)[number];
      if (entry.had) this.layer.set(entry.key, entry.prior as Slot<V>);
      else this.layer.delete(entry.key);
    }
  }

  /** Writes the layer into the base and returns it; the overlay is then empty. */
  fold(): Map<K, V> {
    for (const [key, slot] of this.layer) {
      if (slot === REMOVED) this.base.delete(key);
      else this.base.set(key, slot);
    }
    this.layer.clear();
    this.journal.length = 0;
    return this.base;
  }

  private record(key: K): void {
    this.journal.push({ key, had: this.layer.has(key), prior: this.layer.get(key) });
  }
}

/** What an overlay keyed by name or id changes, as a log record lists it: sorted by key, equal content left out. */
export function overlayDelta<V>(map: OverlayMap<string, V>, same: (a: V, b: V) => boolean): { put: V[]; remove: string[] } {
  const put: V[] = [];
  const remove: string[] = [];
  for (const key of map.changedKeys().sort(compareStrings)) {
    const now = map.get(key);
    const was = map.baseValue(key);
    if (now === undefined) remove.push(key);
    else if (was === undefined || !same(was, now)) put.push(now);
  }
  return { put, remove };
}
