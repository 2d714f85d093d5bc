import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Mapping, XdsAny } from '../src/proto/types';
import { packAny } from '../src/xds/any';
import { MAPPING_TYPE_URL } from '../src/xds/type-urls';
import { compareStrings, stableJson } from './canonical';
import type { ChangeKind } from './state';

export type ProxyKind = 'agent' | 'sidecar';

/** The cache key of a proxy: its kind and its node id (a workload id or a host id). */
export function nodeKey(kind: ProxyKind, id: string): string {
  return `${kind}/${id}`;
}

/** One resource of a snapshot, named and versioned for the incremental protocol. */
export interface SnapshotResource {
  /** The mapping id. */
  name: string;
  /**
   * A hash of the encoded resource: equal content has the same version on every control plane and
   * across restarts (the mapping's own version survives them), so a reconnecting proxy that
   * already has it is sent nothing.
   */
  version: string;
  resource: XdsAny;
}

/** One proxy's resources, as sent on the discovery stream. */
export interface Snapshot {
  /** The control-plane version at which this proxy's resource set last changed. */
  version: string;
  mappings: readonly Mapping[];
  /** The same mappings packed as `google.protobuf.Any` of MAPPING_TYPE_URL. */
  resources: readonly XdsAny[];
  /** The same again by name, in name order. */
  byName: ReadonlyMap<string, SnapshotResource>;
}

/** What caused a proxy's snapshot to move: the kind of change the control plane committed. */
export type ChangeReason = ChangeKind;

export interface SnapshotChange {
  reasons: ReadonlySet<ChangeReason>;
  /** When the change was committed, on the performance.now() clock. */
  at: number;
}

interface Packed {
  mapping: Mapping;
  json: string;
  resource: SnapshotResource;
}

const NO_RESOURCES: ReadonlyMap<string, SnapshotResource> = new Map();

/**
 * Per-proxy snapshots after go-control-plane's SnapshotCache: a sidecar sees its workload's
 * mappings, an agent the mappings of its host's devices. Only proxies with resources have an
 * entry; any other proxy's snapshot is the empty set at the current version, which is what it
 * would have been had it been stored.
 */
export class SnapshotCache {
  private version = '0';
  private readonly entries = new Map<string, Snapshot>();
  /** Every current mapping packed once, reused while its content stays the same. */
  private packed = new Map<string, Packed>();
  private readonly changes = new Map<string, SnapshotChange>();

  /** Takes a new mapping table and what caused it; returns the keys of the proxies whose resource set changed. */
  update(mappings: readonly Mapping[], version: string, reasons: ReadonlySet<ChangeReason>): string[] {
    const at = performance.now();
    const packed = new Map<string, Packed>();
    const next = new Map<string, Mapping[]>();
    const add = (key: string, m: Mapping): void => {
      const list = next.get(key);
      if (list) list.push(m);
      else next.set(key, [m]);
    };
    for (const m of mappings) {
      const before = this.packed.get(m.id);
      // The generator hands an unchanged mapping over as the same object: no need to serialise it again.
      if (before?.mapping === m) packed.set(m.id, before);
      else {
        const json = stableJson(m);
        packed.set(m.id, before?.json === json ? { ...before, mapping: m } : { mapping: m, json, resource: packResource(m) });
      }
      // A one-hop endpoint is the agent's to serve (docs/one-hop.md): no sidecar carries it.
      if (!m.virtual?.oneHop) add(nodeKey('sidecar', m.workloadId), m);
      add(nodeKey('agent', m.hostId), m);
    }
    const previous = this.packed;
    this.packed = packed;
    // Each mapping is serialised once per update; sets compare by those texts.
    const same = (a: readonly Mapping[], b: readonly Mapping[]): boolean =>
      a.length === b.length && a.every((m, i) => m.id === b[i]?.id && previous.get(m.id)?.json === packed.get(m.id)?.json);
    const changed: string[] = [];
    for (const key of new Set([...this.entries.keys(), ...next.keys()])) {
      const before = this.entries.get(key)?.mappings ?? [];
      const after = (next.get(key) ?? []).sort((a, b) => compareStrings(a.id, b.id));
      if (same(before, after)) continue;
      changed.push(key);
      this.changes.set(key, { reasons, at });
      if (after.length === 0) {
        this.entries.delete(key);
        continue;
      }
      const named = after.map((m) => (packed.get(m.id) as Packed).resource);
      this.entries.set(key, {
        version,
        mappings: after,
        resources: named.map((r) => r.resource),
        byName: new Map(named.map((r) => [r.name, r])),
      });
    }
    this.version = version;
    return changed.sort();
  }

  snapshot(kind: ProxyKind, id: string): Snapshot {
    return this.entries.get(nodeKey(kind, id)) ?? { version: this.version, mappings: [], resources: [], byName: NO_RESOURCES };
  }

  /** How and when the proxy's snapshot last changed; undefined if it never did. */
  lastChange(key: string): SnapshotChange | undefined {
    return this.changes.get(key);
  }
}

function packResource(m: Mapping): SnapshotResource {
  const resource = packAny(MAPPING_TYPE_URL, m);
  return { name: m.id, version: createHash('sha256').update(resource.value).digest('hex').slice(0, 16), resource };
}
