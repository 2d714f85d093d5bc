import { ACCESS, SHARING, wordFor } from '../src/documents/enum-names';
import { ValidationError } from '../src/errors';
import type { Binding, DeviceSelector, PhysicalEndpoint, Policy } from '../src/proto/types';
import { effectivePolicy } from './effective-policy';
import { describeSelector } from './register';
import { sharingRefusal } from './sharing-modes';

/** A binding that would use a device, with its effective policy and the device's record if registered. */
export interface DeviceUser {
  binding: Binding;
  policy: Policy;
  endpoint: PhysicalEndpoint | undefined;
}

/**
 * The users of every device an affected binding selects, keyed by endpoint id (by selector while
 * the device is unregistered: the mapping generator catches what only registration reveals).
 * Bindings whose policy is refused are left out: they never map, so they use no device.
 */
export function deviceUsers(
  bindings: readonly Binding[],
  policies: readonly Policy[],
  select: (selector: DeviceSelector) => PhysicalEndpoint | undefined,
  affected: (b: Binding) => boolean,
): Map<string, DeviceUser[]> {
  const policyMap = new Map(policies.map((p) => [p.name, p]));
  const deviceOf = (b: Binding): string => (b.device ? (select(b.device)?.id ?? describeSelector(b.device)) : '');
  // Only the devices of affected bindings matter, so policies are worked out only for their users.
  const byDevice = new Map<string, DeviceUser[]>();
  for (const b of bindings) if (affected(b) && b.device) byDevice.set(deviceOf(b), []);
  for (const binding of bindings) {
    const users = binding.device && byDevice.get(deviceOf(binding));
    if (!users) continue;
    const effective = effectivePolicy(binding, policyMap);
    if (effective.refused) continue;
    users.push({ binding, policy: effective.policy, endpoint: binding.device ? select(binding.device) : undefined });
  }
  return byDevice;
}

/**
 * The issue-6 checks of one device's bindings, refused at apply with the reason: a sharing mode
 * the device's kind cannot do, a minimum above the binding's own limit, bindings that disagree on
 * the sharing mode or on the device's capacity, minimums that add up to more than the capacity,
 * and more than one read-write binding of a broadcast device. The binding blamed is an affected one.
 */
export function checkDeviceSharing(device: string, users: readonly DeviceUser[], affected: (b: Binding) => boolean): void {
  const mine = users.filter((u) => affected(u.binding));
  if (mine.length === 0) return;
  for (const u of mine) {
    const refusal = u.endpoint && sharingRefusal(u.endpoint.kind, u.policy.sharing);
    if (refusal) throw new ValidationError(`binding/${u.binding.name}: policy.sharing`, `${refusal}; ${device} is one`);
    const [min, own] = [Number(u.policy.minBytesPerSecond), Number(u.policy.bytesPerSecond)];
    if (own > 0 && min > own) {
      throw new ValidationError(
        `binding/${u.binding.name}: policy.minBytesPerSecond`,
        `${min} bytes/s is above the binding's own limit (bytesPerSecond ${own}): it could never get its minimum`,
      );
    }
  }
  disagreement(device, users, mine, 'sharing', (p) => wordFor(SHARING, p.sharing), 'must be shared the same way');
  disagreement(device, users, mine, 'deviceBytesPerSecond', (p) => p.deviceBytesPerSecond, 'must agree on its capacity');

  const capacity = Number(users[0]?.policy.deviceBytesPerSecond ?? '0');
  const minimums = users.filter((u) => u.policy.minBytesPerSecond !== '0');
  const needed = minimums.reduce((s, u) => s + Number(u.policy.minBytesPerSecond), 0);
  if (capacity > 0 && needed > capacity) {
    const who = minimums.map((u) => `binding/${u.binding.name} ${u.policy.minBytesPerSecond}`).join(', ');
    throw new ValidationError(
      `binding/${(mine.find((u) => u.policy.minBytesPerSecond !== '0') ?? (mine[0] as DeviceUser)).binding.name}: policy.minBytesPerSecond`,
      `the minimums of ${device}'s bindings add up to ${needed} bytes/s (${who}), above its capacity (deviceBytesPerSecond ${capacity})`,
    );
  }

  const writers = users.filter((u) => u.policy.sharing === 'SHARING_MODE_BROADCAST' && u.policy.access !== 'ACCESS_READ_ONLY');
  const extra = writers.length > 1 ? writers.find((u) => affected(u.binding)) : undefined;
  if (extra) {
    const other = writers.find((u) => u !== extra) as DeviceUser;
    throw new ValidationError(
      `binding/${extra.binding.name}: policy.access`,
      `${device} is shared by broadcast and binding/${other.binding.name} is its ${wordFor(ACCESS, other.policy.access)} binding already; ` +
        'broadcast allows one: make this one read-only',
    );
  }
}

/** Refuses an affected binding whose `field` differs from another user's of the same device. */
function disagreement(
  device: string,
  users: readonly DeviceUser[],
  mine: readonly DeviceUser[],
  field: 'sharing' | 'deviceBytesPerSecond',
  value: (p: Policy) => string,
  rule: string,
): void {
  for (const u of mine) {
    const other = users.find((o) => value(o.policy) !== value(u.policy));
    if (!other) continue;
    throw new ValidationError(
      `binding/${u.binding.name}: policy.${field}`,
      `is ${value(u.policy)} but binding/${other.binding.name} of the same device ${device} has ${value(other.policy)}; ` +
        `the bindings of one device ${rule}`,
    );
  }
}
