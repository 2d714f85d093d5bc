import { createHash } from 'node:crypto';
import type { AdaptiveLimit, Binding, BindingStatus, DeviceSelector, Host, Mapping, PhysicalEndpoint, Policy } from '../src/proto/types';
import { canonicalBinding, canonicalVirtual, compareStrings, sameContent } from './canonical';
import { effectivePolicy } from './effective-policy';
import { isRoaming, presentHosts } from '../src/model/roaming';
import { describeSelector } from './register';
import { sharingRefusal } from './sharing-modes';

/** Where a generation reads its inputs: the control plane's draft, indexed. */
export interface MappingSources {
  bindings: Iterable<Binding>;
  policies: Pick<ReadonlyMap<string, Policy>, 'get'>;
  select(selector: DeviceSelector): PhysicalEndpoint | undefined;
  /** Every record of a device id on any host: a roaming binding's conflicts. */
  byDeviceId(deviceId: string): Iterable<PhysicalEndpoint>;
  host(id: string): Host | undefined;
  version: string;
  /** The previous generation: unchanged content keeps its version, unchanged inputs their result. */
  previous: { mappings: readonly Mapping[]; derived?: ReadonlyMap<string, Derived> };
  /** New adaptive limits by mapping id (the bandwidth controller's); the others keep the previous one. */
  adaptive?: ReadonlyMap<string, AdaptiveLimit>;
}

/** What a binding was generated from and what it came to before conflicts between bindings. */
export interface Derived {
  binding: Binding;
  policy: Policy | undefined;
  endpoint: PhysicalEndpoint | undefined;
  address: string;
  /** A roaming binding's device reported present by several hosts at once (first first); empty otherwise. */
  rivals: string;
  candidate?: Candidate;
  status?: BindingStatus;
}

export interface GeneratedMappings {
  /** Sorted by id. */
  mappings: Mapping[];
  /** One per binding, sorted by binding name. */
  statuses: BindingStatus[];
  /** Per binding name, for the next generation to reuse what did not change. */
  derived: ReadonlyMap<string, Derived>;
}

/**
 * Stable for a binding as long as its workload, name and physical device stay the same; a roaming
 * binding's as long as its device id does, whichever gateway has it, so that its sidecar sees the
 * same mapping move to another agent rather than one mapping go and another come.
 */
export function mappingId(binding: Binding, physicalId: string): string {
  const hash = createHash('sha256').update(`${binding.workload}\0${binding.name}\0${physicalId}`).digest('hex');
  return `${binding.name}-${hash.slice(0, 8)}`;
}

interface Candidate {
  binding: Binding;
  /** The binding as its status shows it. */
  shown: Binding;
  mapping: Mapping;
  exclusive: boolean;
}

/**
 * The same table from indexed sources, reusing the previous generation's result for every
 * binding whose inputs (the binding, its referenced policy, its device's record, its host's
 * address) are the very same objects as then: a commit costs a pass over the bindings, and
 * regenerates only what it touched. Stored documents are never changed in place, so the same
 * object means the same content.
 */
export function generateFrom(sources: MappingSources): GeneratedMappings {
  const previous = new Map(sources.previous.mappings.map((m) => [m.id, m]));
  const reusable = sources.previous.derived ?? new Map<string, Derived>();
  const derived = new Map<string, Derived>();
  const candidates: Candidate[] = [];

  const bindings = [...sources.bindings].sort((a, b) => compareStrings(a.name, b.name));
  for (const binding of bindings) {
    const policy = binding.policyRef ? sources.policies.get(binding.policyRef) : undefined;
    const endpoint = binding.device ? sources.select(binding.device) : undefined;
    const address = endpoint ? (sources.host(endpoint.hostId)?.socketPlaneAddress ?? '') : '';
    const rivals = binding.device && isRoaming(binding.device) ? rivalsOf(sources, binding.device.id) : '';
    const old = reusable.get(binding.name);
    const same =
      old?.binding === binding &&
      old.policy === policy &&
      old.endpoint === endpoint &&
      old.address === address &&
      old.rivals === rivals &&
      // A candidate refused last time, or whose mapping was since replaced, gets its version anew.
      (!old.candidate || (previous.get(old.candidate.mapping.id) === old.candidate.mapping && !sources.adaptive?.has(old.candidate.mapping.id)));
    const d = same ? old : derive({ binding, policy, endpoint, address, rivals }, sources, previous);
    derived.set(binding.name, d);
    if (d.candidate) candidates.push(d.candidate);
  }

  const statuses = new Map<string, BindingStatus>();
  const mappings: Mapping[] = [];
  for (const group of groupBy(candidates, (c) => c.mapping.physicalId).values()) {
    // Apply rejects conflicting bindings, but a by-path and a by-id selector can turn out to be
    // the same device only once it registers. The binding already mapped keeps the device.
    group.sort((a, b) => Number(previous.has(b.mapping.id)) - Number(previous.has(a.mapping.id)));
    const holder = group[0] as Candidate;
    for (const c of group) {
      if (c !== holder && (c.exclusive || holder.exclusive)) {
        const why = holder.exclusive ? 'is bound exclusively by' : 'is already bound by';
        statuses.set(c.binding.name, {
          binding: c.shown,
          phase: 'BINDING_PHASE_REFUSED',
          message: `device ${c.mapping.physicalId} ${why} binding/${holder.binding.name}`,
          mappingId: '',
        });
        continue;
      }
      mappings.push(c.mapping);
      const rivals = (derived.get(c.binding.name) as Derived).rivals;
      statuses.set(c.binding.name, {
        binding: c.shown,
        phase: 'BINDING_PHASE_MAPPED',
        message: `mapped to ${c.mapping.physicalId} via ${c.mapping.agentAddress}${rivals ? `; conflict: device ${c.binding.device?.id} is reported by ${rivals} at once, traffic stays on ${c.mapping.hostId}` : ''}`,
        mappingId: c.mapping.id,
      });
    }
  }

  mappings.sort((a, b) => compareStrings(a.id, b.id));
  return {
    mappings,
    statuses: bindings.map((b) => statuses.get(b.name) ?? ((derived.get(b.name) as Derived).status as BindingStatus)),
    derived,
  };
}

/** One binding's candidate mapping, or its status saying why it has none. */
function derive(
  inputs: Pick<Derived, 'binding' | 'policy' | 'endpoint' | 'address' | 'rivals'>,
  sources: MappingSources,
  previous: ReadonlyMap<string, Mapping>,
): Derived {
  const { binding, endpoint, address } = inputs;
  const shown = canonicalBinding(binding);
  const status = (phase: BindingStatus['phase'], message: string): Derived => ({ ...inputs, status: { binding: shown, phase, message, mappingId: '' } });
  if (!binding.device || !binding.virtual) return status('BINDING_PHASE_REFUSED', 'binding has no device or no virtual endpoint');
  const effective = effectivePolicy(binding, sources.policies);
  if (effective.refused) return status('BINDING_PHASE_REFUSED', effective.reason);
  const device = describeSelector(binding.device);
  if (!endpoint) return status('BINDING_PHASE_PENDING', `device ${device} is not in the register`);
  if (endpoint.state !== 'ENDPOINT_STATE_PRESENT' && endpoint.state !== 'ENDPOINT_STATE_UNKNOWN') {
    return status('BINDING_PHASE_PENDING', `device ${device} is absent`);
  }
  if (!address) return status('BINDING_PHASE_PENDING', `host ${endpoint.hostId} has no socket-plane address yet (its agent has not connected)`);
  // Apply checks this for registered devices; a device registered later is checked here.
  const refusal = sharingRefusal(endpoint.kind, effective.policy.sharing);
  if (refusal) return status('BINDING_PHASE_REFUSED', `${refusal}; ${endpoint.id} is one`);
  const id = mappingId(binding, isRoaming(binding.device) ? binding.device.id : endpoint.id);
  const before = previous.get(id);
  const mapping: Mapping = {
    id,
    binding: binding.name,
    workloadId: binding.workload,
    virtual: canonicalVirtual({ ...binding.virtual, workloadId: binding.workload }),
    physicalId: endpoint.id,
    hostId: endpoint.hostId,
    devicePath: endpoint.path,
    kind: endpoint.kind,
    agentAddress: address,
    policy: effective.policy,
    adaptiveLimit: adaptiveLimit(effective.policy, sources.adaptive?.get(id) ?? before?.adaptiveLimit ?? null),
    serial: effective.serial,
    version: sources.version,
    settings: { ...binding.settings },
    roaming: isRoaming(binding.device),
  };
  // The unchanged mapping itself, so that later stages can tell it unchanged by identity.
  const kept = before && sameContent({ ...before, version: '' }, { ...mapping, version: '' }) ? before : mapping;
  return { ...inputs, candidate: { binding, shown, mapping: kept, exclusive: effective.policy.sharing === 'SHARING_MODE_EXCLUSIVE' } };
}

/**
 * A mapping keeps its adaptive limit across regenerations (and, stored with it, restarts) as long
 * as its device has a capacity to divide; without one the policy's own limit applies.
 */
function adaptiveLimit(policy: Policy, limit: AdaptiveLimit | null): AdaptiveLimit | null {
  return policy.deviceBytesPerSecond !== '0' ? limit : null;
}

/** The hosts reporting the device present at once, when more than one does ("gw1, gw2"); else empty. */
function rivalsOf(sources: MappingSources, deviceId: string): string {
  const hosts = presentHosts(sources.byDeviceId(deviceId), deviceId);
  return hosts.length > 1 ? hosts.join(', ') : '';
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  return groups;
}
