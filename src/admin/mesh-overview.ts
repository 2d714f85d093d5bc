/**
 * The control plane admin's GET /api/overview (and each /api/events message): the whole mesh as
 * the dashboard and `devicemesh describe binding` show it. Plain JSON, enum prefixes removed.
 */
export interface MeshOverview {
  version: string;
  /** ms since the epoch. */
  generatedAt: number;
  hosts: HostOverview[];
  bindings: BindingOverview[];
  proxies: ProxyOverview[];
  /** The latest adaptive limit changes, oldest first. */
  adaptation: AdaptationOverview[];
}

export interface HostOverview {
  id: string;
  /** CONNECTED, DISCONNECTED … */
  state: string;
  socketPlane: string;
  devices: DeviceOverview[];
}

export interface DeviceOverview {
  id: string;
  path: string;
  kind: string;
  /** PRESENT or ABSENT. */
  state: string;
}

export interface BindingOverview {
  name: string;
  workload: string;
  /** host:path (or host:id). */
  device: string;
  /** protocol://listen */
  virtual: string;
  /** BOUND, PENDING, CONFLICT … */
  phase: string;
  message: string;
  mapping: MappingOverview | null;
  /** From the agent's latest load report; null while none is fresh (no session, or no report). */
  rates: BindingRates | null;
}

export interface MappingOverview {
  id: string;
  version: string;
  physicalId: string;
  hostId: string;
  agentAddress: string;
  /** The policy merged from the binding and its Policy documents, as the agent enforces it. */
  policy: EffectivePolicyOverview;
  /** bytes/s the bandwidth controller holds it to now, 0 when none. */
  adaptiveLimit: number;
  adaptiveReason: string;
}

export interface EffectivePolicyOverview {
  sharing: string;
  access: string;
  /** 0: unlimited. */
  bytesPerSecond: number;
  commandsPerSecond: number;
  queueDepth: number;
  commandTimeoutMs: number;
  priority: number;
  overLimit: string;
}

export interface BindingRates {
  bytesPerSecond: number;
  commandsPerSecond: number;
  throttled: boolean;
  droppedBytes: number;
  droppedCommands: number;
  /** ms since the epoch of the report. */
  reportedAt: number;
}

export interface ProxyOverview {
  /** kind/nodeId, as `get proxies` prints it. */
  name: string;
  kind: string;
  nodeId: string;
  peer: string;
  types: ProxyTypeOverview[];
}

export interface ProxyTypeOverview {
  /** Short type name, e.g. devicemesh.v1.Mapping. */
  type: string;
  sent: string;
  acked: string;
  /** SYNCED, STALE, NACKED, NOT SENT. */
  state: string;
  nack: string;
}

/** One change of a binding's adaptive limit, as the controller decides it and the dashboard shows it. */
export interface AdaptationOverview {
  binding: string;
  device: string;
  /** bytes/s; 0 = there was no adaptive limit. */
  from: number;
  to: number;
  /** Which metric caused it and its values, in words. */
  reason: string;
  /** ms since the epoch. */
  at: number;
}
