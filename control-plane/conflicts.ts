import { ValidationError } from '../src/errors';
import { validateBinding, validatePolicy } from '../src/model/validate';
import type { Binding, DeviceSelector, PhysicalEndpoint, Policy } from '../src/proto/types';
import { parseHostPort } from '../src/util/address';
import { checkDeviceSharing, type DeviceUser, deviceUsers } from './device-sharing-checks';
import { checkBindingDocument, checkPolicyDocument } from './request-checks';

/** The register's lookup of the endpoint a selector designates (Register.select). */
export type SelectEndpoint = (selector: DeviceSelector) => PhysicalEndpoint | undefined;

export interface Documents {
  bindings: readonly Binding[];
  policies: readonly Policy[];
}

/**
 * Checks an Apply as a whole before anything is stored: each document on its own, then the
 * documents against each other and against the stored ones they do not replace. Throws the
 * first ValidationError found, naming `binding/<name>: <field>` or `policy/<name>: <field>`.
 */
export function checkApply(stored: Documents, select: SelectEndpoint, incoming: Documents): void {
  checkUniqueNames('policy', incoming.policies.map((p) => p.name));
  for (const p of incoming.policies) {
    if (!p.name) throw new ValidationError('policy/?: name', 'is required');
    validatePolicy(`policy/${p.name}`, p);
    checkPolicyDocument(`policy/${p.name}`, p);
  }
  checkUniqueNames('binding', incoming.bindings.map((b) => b.name));
  for (const b of incoming.bindings) {
    validateBinding(b);
    checkBindingDocument(b);
  }

  const policies = replaceByName(stored.policies, incoming.policies);
  const bindings = replaceByName(stored.bindings, incoming.bindings);
  const policyNames = new Set(policies.map((p) => p.name));
  for (const b of incoming.bindings) {
    if (b.policyRef && !policyNames.has(b.policyRef)) {
      throw new ValidationError(`binding/${b.name}: policyRef`, `policy "${b.policyRef}" does not exist`);
    }
  }

  const incomingPolicies = new Set(incoming.policies.map((p) => p.name));
  const incomingBindings = new Set(incoming.bindings.map((b) => b.name));
  checkVirtualEndpoints(bindings, (b) => incomingBindings.has(b.name));
  // Stored bindings are affected too when an incoming policy they reference changes their sharing.
  const affected = (b: Binding): boolean => incomingBindings.has(b.name) || incomingPolicies.has(b.policyRef);
  const byDevice = deviceUsers(bindings, policies, select, affected);
  checkExclusiveDevices(byDevice, affected);
  for (const [device, users] of byDevice) checkDeviceSharing(device, users, affected);
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

/**
 * One sidecar serves all of a workload's virtual devices: their names must differ, and so must
 * their listen addresses (a wildcard address clashing with every address on its port) and pty paths.
 */
function checkVirtualEndpoints(bindings: readonly Binding[], affected: (b: Binding) => boolean): void {
  // Only the workloads of affected bindings: an apply costs little more than one pass however many bindings there are.
  const byWorkload = new Map(bindings.filter(affected).map((b) => [b.workload, [] as Binding[]]));
  for (const b of bindings) byWorkload.get(b.workload)?.push(b);
  for (const group of byWorkload.values()) {
    for (const b of group.filter(affected)) {
      for (const other of group) {
        if (other === b) continue;
        const clash = (field: string, value: string): ValidationError =>
          new ValidationError(`binding/${b.name}: virtual.${field}`, `${value} is already used by binding/${other.name} of workload ${b.workload}`);
        if (b.virtual?.name === other.virtual?.name) throw clash('name', b.virtual?.name ?? '');
        if (b.virtual?.path && b.virtual.path === other.virtual?.path) throw clash('path', b.virtual.path);
        const [mine, theirs] = [b.virtual?.listen ?? '', other.virtual?.listen ?? ''];
        if (mine && theirs && sameListenAddress(mine, theirs)) throw clash('listen', mine === theirs ? mine : `${mine} (overlapping ${theirs})`);
      }
    }
  }
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '*']);

/** Both were validated as host:port already. */
function sameListenAddress(a: string, b: string): boolean {
  const x = parseHostPort(a);
  const y = parseHostPort(b);
  const hostX = x.host.toLowerCase();
  const hostY = y.host.toLowerCase();
  return x.port === y.port && (hostX === hostY || WILDCARD_HOSTS.has(hostX) || WILDCARD_HOSTS.has(hostY));
}

function checkExclusiveDevices(byDevice: ReadonlyMap<string, readonly DeviceUser[]>, affected: (b: Binding) => boolean): void {
  for (const [device, group] of byDevice) {
    const users = group.map((u) => ({ binding: u.binding, exclusive: u.policy.sharing === 'SHARING_MODE_EXCLUSIVE' }));
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
