import type { Binding, Host, Mapping, PhysicalEndpoint, Policy } from '../src/proto/types';
import { compareStrings, sameContent } from './canonical';
import type { StoredState } from './state-store';

/** What changed in one list of the stored state, by key (name or id). */
export interface ListDelta<T> {
  put: T[];
  remove: string[];
}

/** The change from one stored state to the next: what a write-ahead log record holds. */
export interface StateDelta {
  version: number;
  bindings: ListDelta<Binding>;
  policies: ListDelta<Policy>;
  endpoints: ListDelta<PhysicalEndpoint>;
  hosts: ListDelta<Host>;
  mappings: ListDelta<Mapping>;
}

const byName = (item: { name: string }): string => item.name;
const byId = (item: { id: string }): string => item.id;

/** The change between two whole states; the control plane builds its records from what a batch touched instead. */
export function diffStates(before: StoredState, after: StoredState): StateDelta {
  return {
    version: after.version,
    bindings: diffList(before.bindings, after.bindings, byName, sameContent),
    policies: diffList(before.policies, after.policies, byName, sameContent),
    endpoints: diffList(before.endpoints, after.endpoints, byId, sameContent),
    hosts: diffList(before.hosts, after.hosts, byId, sameContent),
    mappings: diffMappings(before.mappings, after.mappings),
  };
}

/** Both sorted by id. */
export function diffMappings(before: readonly Mapping[], after: readonly Mapping[]): ListDelta<Mapping> {
  // The mapping generator gives a mapping a new version exactly when its content changes.
  return diffList(before, after, byId, (a, b) => a.version === b.version);
}

/** Every list of the result is sorted by key, as the stored state's lists are. */
export function applyDelta(state: StoredState, delta: StateDelta): StoredState {
  return {
    version: delta.version,
    bindings: applyList(state.bindings, delta.bindings, byName),
    policies: applyList(state.policies, delta.policies, byName),
    endpoints: applyList(state.endpoints, delta.endpoints, byId),
    hosts: applyList(state.hosts, delta.hosts, byId),
    mappings: applyList(state.mappings, delta.mappings, byId),
  };
}

function diffList<T>(before: readonly T[], after: readonly T[], key: (item: T) => string, same: (a: T, b: T) => boolean): ListDelta<T> {
  const old = new Map(before.map((item) => [key(item), item]));
  const put = after.filter((item) => {
    const was = old.get(key(item));
    // Unchanged documents are usually the very same object: no need to compare their content.
    return was === undefined || (was !== item && !same(was, item));
  });
  const kept = new Set(after.map(key));
  return { put, remove: [...old.keys()].filter((k) => !kept.has(k)) };
}

function applyList<T>(list: readonly T[], delta: ListDelta<T>, key: (item: T) => string): T[] {
  const items = new Map(list.map((item) => [key(item), item]));
  for (const k of delta.remove) items.delete(k);
  for (const item of delta.put) items.set(key(item), item);
  return [...items.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, item]) => item);
}
