import { ValidationError } from '../src/errors';
import { validateBinding, validatePolicy } from '../src/model/validate';
import type { Binding, PhysicalEndpoint, Policy } from '../src/proto/types';
import { effectivePolicy } from './effective-policy';
import { describeSelector, selectEndpoint } from './register';

export interface Documents {
  bindings: readonly Binding[];
  policies: readonly Policy[];
}

/**
 * Checks an Apply as a whole before anything is stored: each document on its own, then the
 * documents against each other and against the stored ones they do not replace. Throws the
 * first ValidationError found, naming `binding/<name>: <field>` or `policy/<name>: <field>`.
 */
export function checkApply(stored: Documents, endpoints: readonly PhysicalEndpoint[], incoming: Documents): void {
  checkUniqueNames('policy', incoming.policies.map((p) => p.name));
  for (const p of incoming.policies) {
    if (!p.name) throw new ValidationError('policy/?: name', 'is required');
    validatePolicy(`policy/${p.name}`, p);
  }
  checkUniqueNames('binding', incoming.bindings.map((b) => b.name));
  for (const b of incoming.bindings) validateBinding(b);

  const policies = replaceByName(stored.policies, incoming.policies);
  const bindings = replaceByName(stored.bindings, incoming.bindings);
  const policyNames = new Set(policies.map((p) => p.name));
  for (const b of incoming.bindings) {
    if (b.policyRef && !policyNames.has(b.policyRef)) {
      throw new ValidationError(`binding/${b.name}: policyRef`, `policy "${b.policyRef}" does not exist`);
    }
  }

  // Stored bindings are affected too when an incoming policy they reference changes.
  const incomingPolicies = new Set(incoming.policies.map((p) => p.name));
  const incomingBindings = new Set(incoming.bindings.map((b) => b.name));
  const affected = (b: Binding): boolean => incomingBindings.has(b.name) || incomingPolicies.has(b.policyRef);
  checkVirtualEndpoints(bindings, affected);
  checkExclusiveDevices(bindings, policies, endpoints, affected);
}

/** A policy still referenced by a binding cannot go: those bindings would silently lose their mappings. */
export function checkPolicyDelete(name: string, bindings: readonly Binding[]): void {
  const users = bindings.filter((b) => b.policyRef === name).map((b) => `binding/${b.name}`);
  if (users.length > 0) {
    throw new ValidationError(`policy/${name}`, `is used by ${users.join(', ')}; change or delete those bindings first`);
  }
}

function checkUniqueNames(kind: string, names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (name && seen.has(name)) throw new ValidationError(`${kind}/${name}: name`, 'appears more than once in this apply');
    seen.add(name);
  }
}

function replaceByName<T extends { name: string }>(stored: readonly T[], incoming: readonly T[]): T[] {
  const replaced = new Set(incoming.map((d) => d.name));
  return [...stored.filter((d) => !replaced.has(d.name)), ...incoming];
}

/** One sidecar serves all of a workload's virtual devices: names and listen addresses must not clash. */
function checkVirtualEndpoints(bindings: readonly Binding[], affected: (b: Binding) => boolean): void {
  for (const field of ['listen', 'name'] as const) {
    const holders = new Map<string, Binding>();
    for (const b of [...bindings].sort((x, y) => Number(affected(x)) - Number(affected(y)))) {
      const key = `${b.workload}\0${b.virtual?.[field] ?? ''}`;
      const other = holders.get(key);
      if (other && affected(b)) {
        throw new ValidationError(
          `binding/${b.name}: virtual.${field}`,
          `${b.virtual?.[field]} is already used by binding/${other.name} of workload ${b.workload}`,
        );
      }
      holders.set(key, b);
    }
  }
}

function checkExclusiveDevices(
  bindings: readonly Binding[],
  policies: readonly Policy[],
  endpoints: readonly PhysicalEndpoint[],
  affected: (b: Binding) => boolean,
): void {
  const policyMap = new Map(policies.map((p) => [p.name, p]));
  const byDevice = new Map<string, { binding: Binding; exclusive: boolean }[]>();
  for (const binding of bindings) {
    if (!binding.device) continue;
    const effective = effectivePolicy(binding, policyMap);
    // A refused binding never maps, so it holds no device.
    if (effective.refused) continue;
    // Unregistered devices are compared by selector; the mapping generator catches the rest.
    const key = selectEndpoint(endpoints, binding.device)?.id ?? describeSelector(binding.device);
    const users = byDevice.get(key) ?? [];
    users.push({ binding, exclusive: effective.policy.sharing === 'SHARING_MODE_EXCLUSIVE' });
    byDevice.set(key, users);
  }
  for (const [device, users] of byDevice) {
    if (users.length < 2 || !users.some((u) => u.exclusive)) continue;
    const culprit = users.find((u) => affected(u.binding));
    if (!culprit) continue;
    // Exists: the group has two users and at least one of them is exclusive.
    const other = users.find((u) => u !== culprit && (culprit.exclusive || u.exclusive)) as (typeof users)[number];
    throw new ValidationError(
      `binding/${culprit.binding.name}: device`,
      culprit.exclusive
        ? `${device} is also bound by binding/${other.binding.name}; an exclusive binding must be its device's only one`
        : `${device} is bound exclusively by binding/${other.binding.name}`,
    );
  }
}
