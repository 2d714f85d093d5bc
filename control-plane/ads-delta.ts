import type { XdsNode } from '../src/proto/types';
import { type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, WILDCARD, type XdsResource } from '../src/xds/delta-messages';
import { AdsStream, CONTROL_PLANE_ID, newTypeState, type Prepared, type TypeState } from './ads-stream';
import type { Snapshot } from './snapshot-cache';

interface DeltaState extends TypeState {
  /** Subscribed to every resource of the type (explicitly with "*", or by naming none at first). */
  wildcard: boolean;
  /** Resources subscribed by name. */
  names: Set<string>;
  /**
   * What the proxy holds of what it is subscribed to, as its ACKs and its initial versions say:
   * name → version, '' for a name it is owed an answer about (a fresh subscription, even to a
   * resource that does not exist). Diffs are taken against this, so after a NACK the next
   * change resends whatever the proxy rejected.
   */
  known: Map<string, string>;
  /** A wildcard proxy that holds nothing is answered even with nothing, to finish starting. */
  owesFirst: boolean;
  /** The difference in flight, merged into `known` when it is acknowledged. */
  pending: { updated: Map<string, string>; removed: string[] } | undefined;
}

/**
 * The incremental variant: per-resource versions (content hashes, stable across restarts),
 * subscriptions by name or wildcard, responses carrying only what changed plus the names removed.
 * A proxy reconnecting with initial_resource_versions is sent only the difference — nothing when
 * it is current.
 */
export class DeltaStream extends AdsStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse, DeltaState> {
  protected nodeOf(request: DeltaDiscoveryRequest): XdsNode | null {
    return request.node;
  }

  protected handle(request: DeltaDiscoveryRequest): void {
    const { typeUrl } = request;
    if (!this.served(typeUrl)) return;
    const subscribe = request.resourceNamesSubscribe;
    const unsubscribe = request.resourceNamesUnsubscribe;
    const state = this.types.get(typeUrl);
    if (!state) {
      // The first request of a type: a nonce on it answers nothing sent on this stream.
      this.subscribed(firstSubscription(typeUrl, subscribe, request.initialResourceVersions));
      return;
    }
    // The answer first: it is about what was sent before these subscription changes.
    if (request.responseNonce) this.answer(state, request.responseNonce, request.errorDetail);
    if (resubscribe(state, subscribe, unsubscribe)) {
      state.dirty = true;
      state.triggers.add('subscribe');
      // New names are answered even while a rejected version waits for the next change.
      state.nackedVersion = '';
    }
  }

  protected prepare(state: DeltaState, snapshot: Snapshot): Prepared<DeltaDiscoveryResponse> | undefined {
    const resources: XdsResource[] = [];
    const updated = new Map<string, string>();
    for (const r of snapshot.byName.values()) {
      if (!inScope(state, r.name) || state.known.get(r.name) === r.version) continue;
      resources.push({ name: r.name, version: r.version, resource: r.resource });
      updated.set(r.name, r.version);
    }
    const removed = [...state.known.keys()].filter((name) => !snapshot.byName.has(name)).sort();
    if (resources.length === 0 && removed.length === 0 && !state.owesFirst) {
      // The proxy already holds exactly this: in sync without a word.
      this.services.proxies.inSync(this.id, state.typeUrl, snapshot.version);
      return undefined;
    }
    state.owesFirst = false;
    state.pending = { updated, removed };
    return {
      version: snapshot.version,
      summary: { resources: resources.length, removed: removed.length },
      response: (nonce) => ({
        systemVersionInfo: snapshot.version,
        resources,
        typeUrl: state.typeUrl,
        removedResources: removed,
        nonce,
        controlPlane: { identifier: CONTROL_PLANE_ID },
      }),
    };
  }

  protected override accepted(state: DeltaState): void {
    const pending = state.pending;
    state.pending = undefined;
    if (!pending) return;
    // Names unsubscribed meanwhile are dropped by the proxy: they stay out of `known`.
    for (const [name, version] of pending.updated) if (inScope(state, name)) state.known.set(name, version);
    for (const name of pending.removed) state.known.delete(name);
  }

  protected override rejected(state: DeltaState): void {
    // The proxy kept what it had: `known` stays as it was.
    state.pending = undefined;
  }
}

function inScope(state: DeltaState, name: string): boolean {
  return state.wildcard || state.names.has(name);
}

/** As Envoy does: naming nothing, or naming "*", in the first request of a type is a wildcard subscription. */
function firstSubscription(typeUrl: string, subscribe: readonly string[], initial: Readonly<Record<string, string>>): DeltaState {
  const names = new Set(subscribe.filter((n) => n !== WILDCARD));
  const wildcard = subscribe.length === 0 || subscribe.includes(WILDCARD);
  const known = new Map<string, string>();
  for (const [name, version] of Object.entries(initial)) {
    if (wildcard || names.has(name)) known.set(name, version);
  }
  for (const name of names) if (!known.has(name)) known.set(name, '');
  return {
    ...newTypeState(typeUrl, 'connect'),
    wildcard,
    names,
    known,
    owesFirst: wildcard && Object.keys(initial).length === 0,
    pending: undefined,
  };
}

/** Applies a later request's subscription changes; true if the subscription changed. */
function resubscribe(state: DeltaState, subscribe: readonly string[], unsubscribe: readonly string[]): boolean {
  let changed = false;
  for (const name of subscribe) {
    changed = true;
    if (name === WILDCARD) {
      state.wildcard = true;
      continue;
    }
    state.names.add(name);
    // A subscription is answered even for a resource the proxy had: it may have dropped it.
    state.known.set(name, '');
  }
  for (const name of unsubscribe) {
    if (name === WILDCARD) {
      if (!state.wildcard) continue;
      state.wildcard = false;
      for (const held of [...state.known.keys()]) if (!state.names.has(held)) state.known.delete(held);
      changed = true;
      continue;
    }
    if (!state.names.delete(name)) continue;
    changed = true;
    // Still wanted through the wildcard: Envoy expects its state again; otherwise the proxy drops it.
    if (state.wildcard) state.known.set(name, '');
    else state.known.delete(name);
  }
  return changed;
}
