import type {
  Binding,
  DeviceSelector,
  Host,
  Mapping,
  PhysicalEndpoint,
  AdaptiveLimit,
  Policy,
  ResponseFraming,
  SerialConfig,
  Timestamp,
  VirtualEndpoint,
} from '../src/proto/types';

/**
 * The exact shape the control plane stores, compares and persists. Objects from gRPC carry
 * extras (proto3 `optional` adds synthetic oneof fields such as `_dtr`) and objects from the
 * state file may miss defaults; both go through these functions so that equal content always
 * compares and serialises equal.
 */

export function canonicalPolicy(p: Partial<Policy>): Policy {
  return {
    name: p.name ?? '',
    workloads: [...(p.workloads ?? [])],
    access: p.access ?? 'ACCESS_UNSPECIFIED',
    sharing: p.sharing ?? 'SHARING_MODE_UNSPECIFIED',
    bytesPerSecond: String(p.bytesPerSecond ?? '0'),
    queueDepth: p.queueDepth ?? 0,
    commandTimeoutMs: p.commandTimeoutMs ?? 0,
    priority: p.priority ?? 0,
    pinSerial: p.pinSerial ?? false,
    commandsPerSecond: p.commandsPerSecond ?? 0,
    burstBytes: String(p.burstBytes ?? '0'),
    burstCommands: p.burstCommands ?? 0,
    overLimit: p.overLimit ?? 'OVER_LIMIT_UNSPECIFIED',
    requestTerminator: p.requestTerminator ?? '',
    response: p.response ? canonicalResponseFraming(p.response) : null,
    perConsumerQueue: p.perConsumerQueue ?? 0,
    timeSliceMs: p.timeSliceMs ?? 0,
    weight: p.weight ?? 0,
    unsolicitedOwner: p.unsolicitedOwner ?? '',
    waitWhenBusy: p.waitWhenBusy ?? false,
    readyPattern: p.readyPattern ?? '',
    minBytesPerSecond: String(p.minBytesPerSecond ?? '0'),
    deviceBytesPerSecond: String(p.deviceBytesPerSecond ?? '0'),
    units: [...(p.units ?? [])],
    roamingHoldMs: p.roamingHoldMs ?? 0,
  };
}

export function canonicalResponseFraming(r: Partial<ResponseFraming>): ResponseFraming {
  return {
    kind: r.kind ?? 'RESPONSE_FRAMING_UNSPECIFIED',
    terminator: r.terminator ?? '',
    length: r.length ?? 0,
    pattern: r.pattern ?? '',
    idleGapMs: r.idleGapMs ?? 0,
  };
}

export function canonicalAdaptiveLimit(a: Partial<AdaptiveLimit>): AdaptiveLimit {
  return { bytesPerSecond: String(a.bytesPerSecond ?? '0'), reason: a.reason ?? '', changedAtMs: String(a.changedAtMs ?? '0') };
}

export function canonicalSerial(s: Partial<SerialConfig>): SerialConfig {
  const out: SerialConfig = {
    baudRate: s.baudRate ?? 0,
    dataBits: s.dataBits ?? 0,
    parity: s.parity ?? 'PARITY_UNSPECIFIED',
    stopBits: s.stopBits ?? 'STOP_BITS_UNSPECIFIED',
    flowControl: s.flowControl ?? 'FLOW_CONTROL_UNSPECIFIED',
  };
  // Absent and false differ for DTR/RTS: absent leaves the line as the driver opens it.
  if (typeof s.dtr === 'boolean') out.dtr = s.dtr;
  if (typeof s.rts === 'boolean') out.rts = s.rts;
  return out;
}

export function canonicalVirtual(v: Partial<VirtualEndpoint>): VirtualEndpoint {
  const out: VirtualEndpoint = {
    workloadId: v.workloadId ?? '',
    name: v.name ?? '',
    protocol: v.protocol ?? 'VIRTUAL_PROTOCOL_UNSPECIFIED',
    listen: v.listen ?? '',
  };
  // The pty fields are absent when unset, so that documents stored before they existed keep their hashes and versions.
  if (v.path) out.path = v.path;
  if (v.owner) out.owner = v.owner;
  if (v.group) out.group = v.group;
  if (v.mode) out.mode = v.mode;
  if (v.oneHop) out.oneHop = true;
  return out;
}

function canonicalSelector(d: Partial<DeviceSelector>): DeviceSelector {
  return { host: d.host ?? '', path: d.path ?? '', id: d.id ?? '' };
}

function canonicalTimestamp(t: Partial<Timestamp> | null | undefined): Timestamp | null {
  return t ? { seconds: String(t.seconds ?? '0'), nanos: t.nanos ?? 0 } : null;
}

/** A copy with keys in order, so that equal maps serialise equal. */
function sortedRecord(r: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(r ?? {}).sort()) out[key] = (r as Record<string, string>)[key] as string;
  return out;
}

export function canonicalBinding(b: Partial<Binding>): Binding {
  return {
    name: b.name ?? '',
    workload: b.workload ?? '',
    device: b.device ? canonicalSelector(b.device) : null,
    virtual: b.virtual ? canonicalVirtual(b.virtual) : null,
    policy: b.policy ? canonicalPolicy(b.policy) : null,
    policyRef: b.policyRef ?? '',
    serial: b.serial ? canonicalSerial(b.serial) : null,
    settings: sortedRecord(b.settings),
  };
}

export function canonicalEndpoint(e: Partial<PhysicalEndpoint>): PhysicalEndpoint {
  return {
    id: e.id ?? '',
    hostId: e.hostId ?? '',
    deviceId: e.deviceId ?? '',
    kind: e.kind ?? 'DEVICE_KIND_UNSPECIFIED',
    path: e.path ?? '',
    capabilities: [...(e.capabilities ?? [])],
    state: e.state ?? 'ENDPOINT_STATE_UNSPECIFIED',
    labels: { ...(e.labels ?? {}) },
    updatedAt: canonicalTimestamp(e.updatedAt),
    configuration: sortedRecord(e.configuration),
  };
}

export function canonicalHost(h: Partial<Host>): Host {
  return {
    id: h.id ?? '',
    socketPlaneAddress: h.socketPlaneAddress ?? '',
    state: h.state ?? 'HOST_STATE_UNSPECIFIED',
    lastSeen: canonicalTimestamp(h.lastSeen),
  };
}

export function canonicalMapping(m: Partial<Mapping>): Mapping {
  return {
    id: m.id ?? '',
    binding: m.binding ?? '',
    workloadId: m.workloadId ?? '',
    virtual: m.virtual ? canonicalVirtual(m.virtual) : null,
    physicalId: m.physicalId ?? '',
    hostId: m.hostId ?? '',
    devicePath: m.devicePath ?? '',
    kind: m.kind ?? 'DEVICE_KIND_UNSPECIFIED',
    agentAddress: m.agentAddress ?? '',
    policy: m.policy ? canonicalPolicy(m.policy) : null,
    serial: m.serial ? canonicalSerial(m.serial) : null,
    version: m.version ?? '',
    settings: sortedRecord(m.settings),
    adaptiveLimit: m.adaptiveLimit ? canonicalAdaptiveLimit(m.adaptiveLimit) : null,
    roaming: m.roaming ?? false,
  };
}

/** JSON with object keys sorted, so that equal content gives equal text whatever the key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

export function sameContent(a: unknown, b: unknown): boolean {
  return stableJson(a) === stableJson(b);
}

export function timestampOf(date: Date): Timestamp {
  const ms = date.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

/** Code-unit order, the same on every machine (unlike localeCompare). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
