import type { Mapping, XdsAny } from '../src/proto/types';
import { packAny } from '../src/xds/any';
import { MAPPING_TYPE_URL } from '../src/xds/type-urls';
import { compareStrings, sameContent } from './canonical';

export type ProxyKind = 'agent' | 'sidecar';

/** The cache key of a proxy: its kind and its node id (a workload id or a host id). */
export function nodeKey(kind: ProxyKind, id: string): string {
  return `${kind}/${id}`;
}

/** One proxy's resources, as sent on the discovery stream. */
export interface Snapshot {
  /** The control-plane version at which this proxy's resource set last changed. */
  version: string;
  mappings: readonly Mapping[];
  /** The same mappings packed as `google.protobuf.Any` of MAPPING_TYPE_URL. */
  resources: readonly XdsAny[];
}

/**
 * Per-proxy snapshots after go-control-plane's SnapshotCache: a sidecar sees its workload's
 * mappings, an agent the mappings of its host's devices. Only proxies with resources have an
 * entry; any other proxy's snapshot is the empty set at the current version, which is what it
 * would have been had it been stored.
 */
export class SnapshotCache {
  private version = '0';
  private readonly entries = new Map<string, Snapshot>();

  /** Takes a new mapping table; returns the keys of the proxies whose resource set changed. */
  update(mappings: readonly Mapping[], version: string): string[] {
    const next = new Map<string, Mapping[]>();
    const add = (key: string, m: Mapping): void => {
      next.set(key, [...(next.get(key) ?? []), m]);
    };
    for (const m of mappings) {
      add(nodeKey('sidecar', m.workloadId), m);
      add(nodeKey('agent', m.hostId), m);
    }
    const changed: string[] = [];
    for (const key of new Set([...this.entries.keys(), ...next.keys()])) {
      const before = this.entries.get(key)?.mappings ?? [];
      const after = (next.get(key) ?? []).sort((a, b) => compareStrings(a.id, b.id));
      if (sameContent(before, after)) continue;
      changed.push(key);
      if (after.length === 0) this.entries.delete(key);
      else this.entries.set(key, { version, mappings: after, resources: after.map((m) => packAny(MAPPING_TYPE_URL, m)) });
    }
    this.version = version;
    return changed.sort();
  }

  snapshot(kind: ProxyKind, id: string): Snapshot {
    return this.entries.get(nodeKey(kind, id)) ?? { version: this.version, mappings: [], resources: [] };
  }
}
