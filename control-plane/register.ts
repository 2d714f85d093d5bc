import { ValidationError } from '../src/errors';
import type { DeviceSelector, EndpointState, Host, PhysicalEndpoint, Timestamp } from '../src/proto/types';
import { canonicalEndpoint, canonicalHost, compareStrings } from './canonical';

/** A physical endpoint's mesh-wide id. */
export function endpointId(hostId: string, deviceId: string): string {
  return `${hostId}/${deviceId}`;
}

/** How a selector reads in messages: `gw1:/dev/ttyUSB0` by path, `gw1/usb-…` by device id. */
export function describeSelector(selector: DeviceSelector): string {
  return selector.path ? `${selector.host}:${selector.path}` : endpointId(selector.host, selector.id);
}

// A path may be held by a present device and by stale records of devices once plugged there.
const STATE_PREFERENCE: Record<EndpointState, number> = {
  ENDPOINT_STATE_PRESENT: 0,
  ENDPOINT_STATE_UNKNOWN: 1,
  ENDPOINT_STATE_ABSENT: 2,
  ENDPOINT_STATE_UNSPECIFIED: 3,
};

/**
 * The endpoint a binding's selector designates: by device id exactly, or by port path on the
 * host, preferring a present device over stale records at the same path.
 */
export function selectEndpoint(endpoints: Iterable<PhysicalEndpoint>, selector: DeviceSelector): PhysicalEndpoint | undefined {
  let best: PhysicalEndpoint | undefined;
  for (const e of endpoints) {
    if (e.hostId !== selector.host) continue;
    if (selector.id ? e.deviceId !== selector.id : e.path !== selector.path) continue;
    if (
      !best ||
      STATE_PREFERENCE[e.state] < STATE_PREFERENCE[best.state] ||
      (STATE_PREFERENCE[e.state] === STATE_PREFERENCE[best.state] && e.id < best.id)
    ) {
      best = e;
    }
  }
  return best;
}

/** Checks an endpoint as an agent reports it; the id is derived, never trusted. */
export function checkReportedEndpoint(endpoint: PhysicalEndpoint): void {
  if (!endpoint.hostId) throw new ValidationError('endpoint: hostId', 'is required');
  // The id is "<hostId>/<deviceId>": a '/' in the host id would make it ambiguous.
  if (/[\s/]/.test(endpoint.hostId)) {
    throw new ValidationError('endpoint: hostId', `"${endpoint.hostId}" must not contain '/' or whitespace`);
  }
  if (!endpoint.deviceId) throw new ValidationError('endpoint: deviceId', 'is required');
}

/**
 * The register of physical endpoints and hosts: plain data, no I/O. The control plane mutates
 * a clone and swaps it in once the clone is persisted.
 */
export class Register {
  private readonly endpointsById = new Map<string, PhysicalEndpoint>();
  private readonly hostsById = new Map<string, Host>();

  constructor(endpoints: Iterable<PhysicalEndpoint> = [], hosts: Iterable<Host> = []) {
    for (const e of endpoints) this.endpointsById.set(e.id, canonicalEndpoint(e));
    for (const h of hosts) this.hostsById.set(h.id, canonicalHost(h));
  }

  clone(): Register {
    return new Register(this.endpointsById.values(), this.hostsById.values());
  }

  /** Sorted by id; only one host's when `hostId` is given. */
  endpoints(hostId?: string): PhysicalEndpoint[] {
    return [...this.endpointsById.values()]
      .filter((e) => !hostId || e.hostId === hostId)
      .sort((a, b) => compareStrings(a.id, b.id));
  }

  endpoint(id: string): PhysicalEndpoint | undefined {
    return this.endpointsById.get(id);
  }

  hosts(): Host[] {
    return [...this.hostsById.values()].sort((a, b) => compareStrings(a.id, b.id));
  }

  host(id: string): Host | undefined {
    return this.hostsById.get(id);
  }

  select(selector: DeviceSelector): PhysicalEndpoint | undefined {
    return selectEndpoint(this.endpointsById.values(), selector);
  }

  /** An agent reports a device: it is present now, whatever it was before. */
  reportEndpoint(reported: PhysicalEndpoint, now: Timestamp): PhysicalEndpoint {
    checkReportedEndpoint(reported);
    const endpoint = canonicalEndpoint({
      ...reported,
      id: endpointId(reported.hostId, reported.deviceId),
      state: 'ENDPOINT_STATE_PRESENT',
      updatedAt: now,
    });
    this.endpointsById.set(endpoint.id, endpoint);
    return endpoint;
  }

  removeEndpoint(id: string): boolean {
    return this.endpointsById.delete(id);
  }

  /** Keeps the record (so bindings can say the device is absent) but marks it gone. */
  markAbsent(id: string, now: Timestamp): PhysicalEndpoint | undefined {
    const e = this.endpointsById.get(id);
    if (!e) return undefined;
    const absent = { ...e, state: 'ENDPOINT_STATE_ABSENT' as const, updatedAt: now };
    this.endpointsById.set(id, absent);
    return absent;
  }

  hostConnected(id: string, socketPlaneAddress: string, now: Timestamp): Host {
    const host = canonicalHost({ id, socketPlaneAddress, state: 'HOST_STATE_CONNECTED', lastSeen: now });
    this.hostsById.set(id, host);
    return host;
  }

  /** The host keeps its socket-plane address: its mappings stay, since its agent may be back soon. */
  hostDisconnected(id: string, now: Timestamp): Host | undefined {
    const h = this.hostsById.get(id);
    if (!h) return undefined;
    const host = { ...h, state: 'HOST_STATE_DISCONNECTED' as const, lastSeen: now };
    this.hostsById.set(id, host);
    return host;
  }
}
