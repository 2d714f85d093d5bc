import type { DeviceSelector, PhysicalEndpoint, Timestamp } from '../proto/types';

/** A selector by stable device id without a host: the binding follows the device to whichever gateway reports it. */
export function isRoaming(selector: DeviceSelector): boolean {
  return !selector.host && !!selector.id;
}

function timeOf(t: Timestamp | null): bigint {
  return t ? BigInt(t.seconds || '0') * 1_000_000_000n + BigInt(t.nanos) : 0n;
}

/** Present first, then the one that has been present longest (the first to report it keeps it), then by id. */
export function earlierPresent(a: PhysicalEndpoint, b: PhysicalEndpoint): boolean {
  const ta = timeOf(a.updatedAt);
  const tb = timeOf(b.updatedAt);
  return ta !== tb ? ta < tb : a.id < b.id;
}

/**
 * The hosts reporting device id `deviceId` present at once, the first one first: two or more is a
 * conflict, and traffic stays on the first.
 */
export function presentHosts(endpoints: Iterable<PhysicalEndpoint>, deviceId: string): string[] {
  const present = [...endpoints].filter((e) => e.deviceId === deviceId && e.state === 'ENDPOINT_STATE_PRESENT');
  present.sort((a, b) => (earlierPresent(a, b) ? -1 : 1));
  return present.map((e) => e.hostId);
}

/** Device ids reported present by more than one host, with those hosts: `get endpoints` shows them as conflicts. */
export function conflictingDeviceIds(endpoints: readonly PhysicalEndpoint[]): Map<string, string[]> {
  const conflicts = new Map<string, string[]>();
  for (const id of new Set(endpoints.map((e) => e.deviceId))) {
    const hosts = presentHosts(endpoints, id);
    if (hosts.length > 1) conflicts.set(id, hosts);
  }
  return conflicts;
}
