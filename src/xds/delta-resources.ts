import { ProtocolError } from '../errors';
import { unpackAny } from './any';
import type { DeltaDiscoveryResponse } from './delta-messages';

/** A resource a proxy holds: its version and its decoded message. */
export interface HeldResource {
  version: string;
  message: unknown;
}

/** What a proxy holds of one type, by resource name, in name order. */
export type ResourceSet = ReadonlyMap<string, HeldResource>;

export const NO_RESOURCES: ResourceSet = new Map();

/**
 * The set an incremental response leads to: its removals, then its resources, over `current`
 * (which is left alone, so that a rejected response changes nothing). A resource without a name
 * or a body, or whose body does not decode as the response's type, is a ProtocolError.
 */
export function applyDelta(current: ResourceSet, response: DeltaDiscoveryResponse): ResourceSet {
  const next = new Map(current);
  for (const name of response.removedResources) next.delete(name);
  for (const r of response.resources) {
    if (!r.name) throw new ProtocolError(`a ${response.typeUrl} resource has no name`);
    if (!r.resource) throw new ProtocolError(`resource ${r.name} has no body`);
    next.set(r.name, { version: r.version, message: unpackAny(r.resource, response.typeUrl) });
  }
  return new Map([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** name → version, as initial_resource_versions tells a control plane what a reconnecting proxy has. */
export function versionsOf(set: ResourceSet): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, r] of set) out[name] = r.version;
  return out;
}
