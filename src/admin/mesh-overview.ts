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
  /** The latest moves of roaming bindings between gateways, oldest first. */
  roamingMoves: RoamingMoveOverview[];
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
  /** The binding names a device id without a host: the mapping follows the device between gateways. */
  roaming: boolean;
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
  /** How long a roaming binding's apps are held while its device moves. */
  roamingHoldMs: number;
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

/** A roaming binding's mapping that came back pointing at another gateway's device than it last did. */
export interface RoamingMoveOverview {
  binding: string;
  /** The physical ids (host/device id) it pointed at before and after. */
  from: string;
  to: string;
  /** How long no gateway had it mapped (0: it moved in one commit). */
  awayMs: number;
  /** The config version that carried the move. */
  version: string;
  /** ms since the epoch. */
  at: number;
}
