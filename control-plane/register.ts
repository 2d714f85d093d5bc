import { ValidationError } from '../src/errors';
import { earlierPresent } from '../src/model/roaming';
import type { DeviceSelector, EndpointState, Host, PhysicalEndpoint, Timestamp } from '../src/proto/types';
import { canonicalEndpoint, canonicalHost, compareStrings, sameContent } from './canonical';
import type { ListDelta } from './state-delta';
import { type JournalMark, OverlayMap, overlayDelta } from './overlay-map';

/** A physical endpoint's mesh-wide id. */
export function endpointId(hostId: string, deviceId: string): string {
  return `${hostId}/${deviceId}`;
}

/** How a selector reads in messages: `gw1:/dev/ttyUSB0` by path, `gw1/usb-…` by device id, `usb-…` roaming. */
export function describeSelector(selector: DeviceSelector): string {
  if (selector.path) return `${selector.host}:${selector.path}`;
  return selector.host ? endpointId(selector.host, selector.id) : selector.id;
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
 * host, preferring a present device over stale records at the same path. A roaming selector (an
 * id, no host) takes the id on any host: the present one, and of several present the first to
 * report it (a conflict, which keeps traffic where it was).
 */
export function selectEndpoint(endpoints: Iterable<PhysicalEndpoint>, selector: DeviceSelector): PhysicalEndpoint | undefined {
  let best: PhysicalEndpoint | undefined;
  for (const e of endpoints) {
    if (selector.host && e.hostId !== selector.host) continue;
    if (selector.id ? e.deviceId !== selector.id : e.path !== selector.path) continue;
    const tie = !selector.host && e.state === 'ENDPOINT_STATE_PRESENT' ? (b: PhysicalEndpoint): boolean => earlierPresent(e, b) : (b: PhysicalEndpoint): boolean => e.id < b.id;
    if (
      !best ||
      STATE_PREFERENCE[e.state] < STATE_PREFERENCE[best.state] ||
      (STATE_PREFERENCE[e.state] === STATE_PREFERENCE[best.state] && tie(best))
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

/** A selector's index key: the host and either the path or the device id. */
function indexKey(host: string, value: string): string {
  return `${host}\n${value}`;
}

interface Tables {
  endpoints: OverlayMap<string, PhysicalEndpoint>;
  hosts: OverlayMap<string, Host>;
  /** Endpoint ids by (host, path): several records can share a path. */
  byPath: OverlayMap<string, ReadonlySet<string>>;
  /** Endpoint ids by (host, device id), and by ('', device id) for roaming selectors. */
  byDevice: OverlayMap<string, ReadonlySet<string>>;
}

/** A point in a draft register's journal to roll back to. */
export type RegisterMark = readonly JournalMark[];

/**
 * The register of physical endpoints and hosts: plain data, no I/O, indexed so that a selector
 * resolves without a scan. The control plane changes a `derive`d draft and `fold`s it once the
 * draft is persisted; a refused job is undone with `rollback`.
 */
export class Register {
  private tables: Tables = {
    endpoints: new OverlayMap(),
    hosts: new OverlayMap(),
    byPath: new OverlayMap(),
    byDevice: new OverlayMap(),
  };

  constructor(endpoints: Iterable<PhysicalEndpoint> = [], hosts: Iterable<Host> = []) {
    for (const e of endpoints) this.putEndpoint(canonicalEndpoint(e));
    for (const h of hosts) this.tables.hosts.set(h.id, canonicalHost(h));
    this.fold();
  }

  /** A draft over this register's content, which must be folded (as a committed register is). */
  derive(): Register {
    const draft = new Register();
    const t = this.tables;
    draft.tables = { endpoints: t.endpoints.derive(), hosts: t.hosts.derive(), byPath: t.byPath.derive(), byDevice: t.byDevice.derive() };
    return draft;
  }

  mark(): RegisterMark {
    return this.all().map((t) => t.mark());
  }

  rollback(mark: RegisterMark): void {
    this.all().forEach((t, i) => t.rollback(mark[i] ?? 0));
  }

  /** Makes the draft's changes the content of the register it was derived from. */
  fold(): void {
    for (const t of this.all()) t.fold();
  }

  /** Ids of the endpoints this draft added, changed or removed. */
  changedEndpointIds(): string[] {
    return this.tables.endpoints.changedKeys();
  }

  /** The endpoint as the register this draft was derived from holds it. */
  baseEndpoint(id: string): PhysicalEndpoint | undefined {
    return this.tables.endpoints.baseValue(id);
  }

  /** What this draft changes, as a log record lists it. */
  delta(): { endpoints: ListDelta<PhysicalEndpoint>; hosts: ListDelta<Host> } {
    return { endpoints: overlayDelta(this.tables.endpoints, sameContent), hosts: overlayDelta(this.tables.hosts, sameContent) };
  }

  /** Sorted by id; only one host's when `hostId` is given. */
  endpoints(hostId?: string): PhysicalEndpoint[] {
    return [...this.tables.endpoints.values()]
      .filter((e) => !hostId || e.hostId === hostId)
      .sort((a, b) => compareStrings(a.id, b.id));
  }

  endpointCount(): number {
    return this.tables.endpoints.size;
  }

  endpoint(id: string): PhysicalEndpoint | undefined {
    return this.tables.endpoints.get(id);
  }

  hosts(): Host[] {
    return [...this.tables.hosts.values()].sort((a, b) => compareStrings(a.id, b.id));
  }

  host(id: string): Host | undefined {
    return this.tables.hosts.get(id);
  }

  select(selector: DeviceSelector): PhysicalEndpoint | undefined {
    const index = selector.id ? this.tables.byDevice : this.tables.byPath;
    const ids = index.get(indexKey(selector.host, selector.id || selector.path)) ?? [];
    return selectEndpoint([...ids].map((id) => this.tables.endpoints.get(id) as PhysicalEndpoint), selector);
  }

  /** Every record of device id `deviceId`, on any host (a roaming binding's candidates). */
  byDeviceId(deviceId: string): PhysicalEndpoint[] {
    return [...(this.tables.byDevice.get(indexKey('', deviceId)) ?? [])].map((id) => this.tables.endpoints.get(id) as PhysicalEndpoint);
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
    this.putEndpoint(endpoint);
    return endpoint;
  }

  /**
   * An agent's whole inventory: each endpoint listed is present (rewritten only if its content
   * changed), each other endpoint of the host that was present or unknown is marked absent.
   * @returns how many were registered and marked absent; both 0 when nothing changed.
   */
  reportHost(hostId: string, reported: readonly PhysicalEndpoint[], now: Timestamp): { registered: number; markedAbsent: number } {
    const listed = new Set<string>();
    let registered = 0;
    for (const r of reported) {
      const id = endpointId(hostId, r.deviceId);
      listed.add(id);
      const old = this.tables.endpoints.get(id);
      const next = canonicalEndpoint({ ...r, id, state: 'ENDPOINT_STATE_PRESENT', updatedAt: old?.updatedAt ?? now });
      if (old && sameContent(old, next)) continue;
      this.reportEndpoint(r, now);
      registered += 1;
    }
    let markedAbsent = 0;
    for (const e of this.endpoints(hostId)) {
      if (listed.has(e.id) || e.state === 'ENDPOINT_STATE_ABSENT') continue;
      this.markAbsent(e.id, now);
      markedAbsent += 1;
    }
    return { registered, markedAbsent };
  }

  removeEndpoint(id: string): boolean {
    const e = this.tables.endpoints.get(id);
    if (!e) return false;
    this.unindex(e);
    this.tables.endpoints.delete(id);
    return true;
  }

  /** Keeps the record (so bindings can say the device is absent) but marks it gone. */
  markAbsent(id: string, now: Timestamp): PhysicalEndpoint | undefined {
    const e = this.tables.endpoints.get(id);
    if (!e) return undefined;
    const absent = { ...e, state: 'ENDPOINT_STATE_ABSENT' as const, updatedAt: now };
    this.tables.endpoints.set(id, absent);
    return absent;
  }

  hostConnected(id: string, socketPlaneAddress: string, now: Timestamp): Host {
    const host = canonicalHost({ id, socketPlaneAddress, state: 'HOST_STATE_CONNECTED', lastSeen: now });
    this.tables.hosts.set(id, host);
    return host;
  }

  /**
   * The host's socket-plane address is withdrawn (its bindings go PENDING until an agent of it is
   * back): no address outlives the stream that announced it. With `connectedAt`, only if that
   * connection is still the one recorded (another replica may have recorded the agent's next one).
   */
  hostDisconnected(id: string, now: Timestamp, connectedAt?: Timestamp): Host | undefined {
    const h = this.tables.hosts.get(id);
    if (!h) return undefined;
    if (connectedAt && (h.state !== 'HOST_STATE_CONNECTED' || !sameTimestamp(h.lastSeen, connectedAt))) return undefined;
    const host = { ...h, socketPlaneAddress: '', state: 'HOST_STATE_DISCONNECTED' as const, lastSeen: now };
    this.tables.hosts.set(id, host);
    return host;
  }

  private all(): OverlayMap<string, unknown>[] {
    const t = this.tables;
    return [t.endpoints, t.hosts, t.byPath, t.byDevice] as OverlayMap<string, unknown>[];
  }

  private putEndpoint(endpoint: PhysicalEndpoint): void {
    const old = this.tables.endpoints.get(endpoint.id);
    if (old) this.unindex(old);
    this.tables.endpoints.set(endpoint.id, endpoint);
    addTo(this.tables.byPath, indexKey(endpoint.hostId, endpoint.path), endpoint.id);
    addTo(this.tables.byDevice, indexKey(endpoint.hostId, endpoint.deviceId), endpoint.id);
    addTo(this.tables.byDevice, indexKey('', endpoint.deviceId), endpoint.id);
  }

  private unindex(endpoint: PhysicalEndpoint): void {
    removeFrom(this.tables.byPath, indexKey(endpoint.hostId, endpoint.path), endpoint.id);
    removeFrom(this.tables.byDevice, indexKey(endpoint.hostId, endpoint.deviceId), endpoint.id);
    removeFrom(this.tables.byDevice, indexKey('', endpoint.deviceId), endpoint.id);
  }
}

// Index sets are replaced, never changed in place: the committed register may share them.
function addTo(index: OverlayMap<string, ReadonlySet<string>>, key: string, id: string): void {
  index.set(key, new Set([...(index.get(key) ?? []), id]));
}

function removeFrom(index: OverlayMap<string, ReadonlySet<string>>, key: string, id: string): void {
  const ids = new Set(index.get(key));
  ids.delete(id);
  if (ids.size > 0) index.set(key, ids);
  else index.delete(key);
}

function sameTimestamp(a: Timestamp | null | undefined, b: Timestamp): boolean {
  return !!a && String(a.seconds) === String(b.seconds) && (a.nanos ?? 0) === (b.nanos ?? 0);
}
