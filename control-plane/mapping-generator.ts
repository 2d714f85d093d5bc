import { createHash } from 'node:crypto';
import type { Binding, BindingStatus, Host, Mapping, PhysicalEndpoint, Policy } from '../src/proto/types';
import { canonicalBinding, canonicalVirtual, compareStrings, sameContent } from './canonical';
import { effectivePolicy } from './effective-policy';
import { describeSelector, selectEndpoint } from './register';

export interface MappingInputs {
  bindings: readonly Binding[];
  policies: readonly Policy[];
  endpoints: readonly PhysicalEndpoint[];
  hosts: readonly Host[];
  /** The control-plane version being generated. */
  version: string;
  /** The mappings of the previous generation: unchanged content keeps its version. */
  previous: readonly Mapping[];
}

export interface GeneratedMappings {
  /** Sorted by id. */
  mappings: Mapping[];
  /** One per binding, sorted by binding name. */
  statuses: BindingStatus[];
}

/** Stable for a binding as long as its workload, name and physical device stay the same. */
export function mappingId(binding: Binding, physicalId: string): string {
  const hash = createHash('sha256').update(`${binding.workload}\0${binding.name}\0${physicalId}`).digest('hex');
  return `${binding.name}-${hash.slice(0, 8)}`;
}

interface Candidate {
  binding: Binding;
  mapping: Mapping;
  exclusive: boolean;
}

/**
 * The mapping table: every binding whose device is in the register (present, or unknown since a
 * restart — withdrawing live mappings on a control-plane restart would cut every session) and
 * whose host has announced its socket plane becomes a mapping; the others get a status saying
 * why not.
 */
export function generateMappings(inputs: MappingInputs): GeneratedMappings {
  const policies = new Map(inputs.policies.map((p) => [p.name, p]));
  const hosts = new Map(inputs.hosts.map((h) => [h.id, h]));
  const previous = new Map(inputs.previous.map((m) => [m.id, m]));
  const statuses = new Map<string, BindingStatus>();
  const candidates: Candidate[] = [];

  const bindings = [...inputs.bindings].sort((a, b) => compareStrings(a.name, b.name));
  for (const binding of bindings) {
    const status = (phase: BindingStatus['phase'], message: string, mappingId = ''): void => {
      statuses.set(binding.name, { binding: canonicalBinding(binding), phase, message, mappingId });
    };
    if (!binding.device || !binding.virtual) {
      status('BINDING_PHASE_REFUSED', 'binding has no device or no virtual endpoint');
      continue;
    }
    const effective = effectivePolicy(binding, policies);
    if (effective.refused) {
      status('BINDING_PHASE_REFUSED', effective.reason);
      continue;
    }
    const device = describeSelector(binding.device);
    const endpoint = selectEndpoint(inputs.endpoints, binding.device);
    if (!endpoint) {
      status('BINDING_PHASE_PENDING', `device ${device} is not in the register`);
      continue;
    }
    if (endpoint.state !== 'ENDPOINT_STATE_PRESENT' && endpoint.state !== 'ENDPOINT_STATE_UNKNOWN') {
      status('BINDING_PHASE_PENDING', `device ${device} is absent`);
      continue;
    }
    const address = hosts.get(endpoint.hostId)?.socketPlaneAddress;
    if (!address) {
      status('BINDING_PHASE_PENDING', `host ${endpoint.hostId} has no socket-plane address yet (its agent has not connected)`);
      continue;
    }
    const mapping: Mapping = {
      id: mappingId(binding, endpoint.id),
      binding: binding.name,
      workloadId: binding.workload,
      virtual: canonicalVirtual({ ...binding.virtual, workloadId: binding.workload }),
      physicalId: endpoint.id,
      hostId: endpoint.hostId,
      devicePath: endpoint.path,
      kind: endpoint.kind,
      agentAddress: address,
      policy: effective.policy,
      serial: effective.serial,
      version: inputs.version,
    };
    const before = previous.get(mapping.id);
    if (before && sameContent({ ...before, version: '' }, { ...mapping, version: '' })) mapping.version = before.version;
    candidates.push({ binding, mapping, exclusive: effective.policy.sharing === 'SHARING_MODE_EXCLUSIVE' });
  }

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
          binding: canonicalBinding(c.binding),
          phase: 'BINDING_PHASE_REFUSED',
          message: `device ${c.mapping.physicalId} ${why} binding/${holder.binding.name}`,
          mappingId: '',
        });
        continue;
      }
      mappings.push(c.mapping);
      statuses.set(c.binding.name, {
        binding: canonicalBinding(c.binding),
        phase: 'BINDING_PHASE_MAPPED',
        message: `mapped to ${c.mapping.physicalId} via ${c.mapping.agentAddress}`,
        mappingId: c.mapping.id,
      });
    }
  }

  mappings.sort((a, b) => compareStrings(a.id, b.id));
  return { mappings, statuses: bindings.map((b) => statuses.get(b.name) as BindingStatus) };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  return groups;
}
