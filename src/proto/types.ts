/**
 * devicemesh.v1 messages as JS objects, in the shape that @grpc/proto-loader and
 * protobufjs produce with OBJECT_OPTIONS: camelCase fields, enums as their names, 64-bit
 * integers as decimal strings, every scalar present with its default.
 */

export type DeviceKind =
  | 'DEVICE_KIND_UNSPECIFIED'
  | 'DEVICE_KIND_SERIAL'
  | 'DEVICE_KIND_HID'
  | 'DEVICE_KIND_GPIO'
  | 'DEVICE_KIND_SENSOR'
  | 'DEVICE_KIND_LAB_CARD'
  | 'DEVICE_KIND_VIDEO'
  | 'DEVICE_KIND_AUDIO';

export type EndpointState =
  | 'ENDPOINT_STATE_UNSPECIFIED'
  | 'ENDPOINT_STATE_PRESENT'
  | 'ENDPOINT_STATE_ABSENT'
  | 'ENDPOINT_STATE_UNKNOWN';

export type VirtualProtocol =
  | 'VIRTUAL_PROTOCOL_UNSPECIFIED'
  | 'VIRTUAL_PROTOCOL_RAW'
  | 'VIRTUAL_PROTOCOL_RFC2217'
  | 'VIRTUAL_PROTOCOL_GRPC'
  | 'VIRTUAL_PROTOCOL_PTY'
  | 'VIRTUAL_PROTOCOL_MODBUS_TCP';

export type HostState = 'HOST_STATE_UNSPECIFIED' | 'HOST_STATE_CONNECTED' | 'HOST_STATE_DISCONNECTED';

export type SharingMode =
  | 'SHARING_MODE_UNSPECIFIED'
  | 'SHARING_MODE_EXCLUSIVE'
  | 'SHARING_MODE_SHARED'
  | 'SHARING_MODE_TIME_SLICE'
  | 'SHARING_MODE_BROADCAST';

export type OverLimit = 'OVER_LIMIT_UNSPECIFIED' | 'OVER_LIMIT_SLOW' | 'OVER_LIMIT_DROP';

export type ResponseFramingKind =
  | 'RESPONSE_FRAMING_UNSPECIFIED'
  | 'RESPONSE_FRAMING_TERMINATOR'
  | 'RESPONSE_FRAMING_FIXED_LENGTH'
  | 'RESPONSE_FRAMING_LENGTH_PREFIX'
  | 'RESPONSE_FRAMING_PATTERN'
  | 'RESPONSE_FRAMING_IDLE_GAP'
  | 'RESPONSE_FRAMING_MODBUS_RTU';

export type Access = 'ACCESS_UNSPECIFIED' | 'ACCESS_READ_WRITE' | 'ACCESS_READ_ONLY';

export type Parity = 'PARITY_UNSPECIFIED' | 'PARITY_NONE' | 'PARITY_EVEN' | 'PARITY_ODD' | 'PARITY_MARK' | 'PARITY_SPACE';

export type StopBits = 'STOP_BITS_UNSPECIFIED' | 'STOP_BITS_ONE' | 'STOP_BITS_ONE_POINT_FIVE' | 'STOP_BITS_TWO';

export type FlowControl = 'FLOW_CONTROL_UNSPECIFIED' | 'FLOW_CONTROL_NONE' | 'FLOW_CONTROL_RTSCTS' | 'FLOW_CONTROL_XONXOFF';

export type BindingPhase =
  | 'BINDING_PHASE_UNSPECIFIED'
  | 'BINDING_PHASE_MAPPED'
  | 'BINDING_PHASE_PENDING'
  | 'BINDING_PHASE_REFUSED';

export type SyncState =
  | 'SYNC_STATE_UNSPECIFIED'
  | 'SYNC_STATE_SYNCED'
  | 'SYNC_STATE_NOT_SENT'
  | 'SYNC_STATE_STALE'
  | 'SYNC_STATE_NACKED';

export interface Timestamp {
  seconds: string;
  nanos: number;
}

export interface PhysicalEndpoint {
  id: string;
  hostId: string;
  deviceId: string;
  kind: DeviceKind;
  path: string;
  capabilities: string[];
  state: EndpointState;
  labels: Record<string, string>;
  updatedAt: Timestamp | null;
  configuration: Record<string, string>;
}

export interface VirtualEndpoint {
  workloadId: string;
  name: string;
  protocol: VirtualProtocol;
  listen: string;
  /** pty only (decoded messages carry '' and 0; code that builds endpoints of other protocols leaves them out). */
  path?: string;
  owner?: string;
  group?: string;
  mode?: number;
  /** One hop: the agent serves this endpoint on a Unix socket at `path` (absent when false, as the pty fields). */
  oneHop?: boolean;
}

export interface Host {
  id: string;
  socketPlaneAddress: string;
  state: HostState;
  lastSeen: Timestamp | null;
}

export interface Policy {
  name: string;
  workloads: string[];
  access: Access;
  sharing: SharingMode;
  bytesPerSecond: string;
  queueDepth: number;
  commandTimeoutMs: number;
  priority: number;
  pinSerial: boolean;
  commandsPerSecond: number;
  burstBytes: string;
  burstCommands: number;
  overLimit: OverLimit;
  requestTerminator: string;
  response: ResponseFraming | null;
  perConsumerQueue: number;
  timeSliceMs: number;
  weight: number;
  unsolicitedOwner: string;
  waitWhenBusy: boolean;
  readyPattern: string;
  minBytesPerSecond: string;
  deviceBytesPerSecond: string;
  units: number[];
  roamingHoldMs: number;
}

export interface ResponseFraming {
  kind: ResponseFramingKind;
  terminator: string;
  length: number;
  pattern: string;
  idleGapMs: number;
}

export interface AdaptiveLimit {
  bytesPerSecond: string;
  reason: string;
  changedAtMs: string;
}

export interface SerialConfig {
  baudRate: number;
  dataBits: number;
  parity: Parity;
  stopBits: StopBits;
  flowControl: FlowControl;
  dtr?: boolean;
  rts?: boolean;
}

export interface DeviceSelector {
  host: string;
  path: string;
  id: string;
}

export interface Binding {
  name: string;
  workload: string;
  device: DeviceSelector | null;
  virtual: VirtualEndpoint | null;
  policy: Policy | null;
  policyRef: string;
  serial: SerialConfig | null;
  settings: Record<string, string>;
}

export interface Mapping {
  id: string;
  binding: string;
  workloadId: string;
  virtual: VirtualEndpoint | null;
  physicalId: string;
  hostId: string;
  devicePath: string;
  kind: DeviceKind;
  agentAddress: string;
  policy: Policy | null;
  serial: SerialConfig | null;
  version: string;
  settings: Record<string, string>;
  adaptiveLimit: AdaptiveLimit | null;
  roaming: boolean;
}

export interface BindingStatus {
  binding: Binding | null;
  phase: BindingPhase;
  message: string;
  mappingId: string;
}

export interface TypeSyncStatus {
  typeUrl: string;
  sentVersion: string;
  ackedVersion: string;
  state: SyncState;
  nackMessage: string;
  nackedVersion: string;
}

export interface ProxyStatus {
  nodeId: string;
  kind: string;
  peer: string;
  connectedAt: Timestamp | null;
  types: TypeSyncStatus[];
}

export interface EndpointEvent {
  type: 'TYPE_UNSPECIFIED' | 'TYPE_SNAPSHOT' | 'TYPE_UPSERTED' | 'TYPE_REMOVED';
  endpoint: PhysicalEndpoint | null;
}

export interface ListEndpointsResponse {
  endpoints: PhysicalEndpoint[];
  hosts: Host[];
}

export interface ApplyRequest {
  bindings: Binding[];
  policies: Policy[];
}

export interface ApplyResponse {
  results: string[];
  version: string;
}

export interface DeleteRequest {
  kind: string;
  name: string;
}

export interface ListBindingsResponse {
  bindings: BindingStatus[];
  policies: Policy[];
}

export interface ListMappingsResponse {
  mappings: Mapping[];
  version: string;
}

export interface ListProxiesResponse {
  proxies: ProxyStatus[];
}

/** The subset of Envoy's DiscoveryRequest / DiscoveryResponse that devicemesh uses. */
export interface XdsNode {
  id: string;
  cluster: string;
  metadata: { fields: Record<string, { stringValue?: string; kind?: string }> } | null;
  userAgentName?: string;
}

/**
 * `google.protobuf.Any` as grpc-js hands it over: protobufjs's built-in Any wrapper keeps the
 * proto field name `type_url` whatever the keepCase option says.
 */
export interface XdsAny {
  type_url: string;
  value: Buffer;
}

export interface XdsStatus {
  code: number;
  message: string;
  details?: XdsAny[];
}

export interface DiscoveryRequest {
  versionInfo: string;
  node: XdsNode | null;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail: XdsStatus | null;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: XdsAny[];
  canary?: boolean;
  typeUrl: string;
  nonce: string;
  controlPlane?: { identifier: string } | null;
}

export interface BindingLoadReport {
  mappingId: string;
  bytesPerSecond: number;
  commandsPerSecond: number;
  throttled: boolean;
  droppedBytes: string;
  droppedCommands: string;
}

export interface DeviceLoadReport {
  physicalId: string;
  bytesPerSecond: number;
}

export interface ReportLoadRequest {
  hostId: string;
  bindings: BindingLoadReport[];
  devices: DeviceLoadReport[];
}

export interface ReportLoadResponse {
  unknownMappingIds: string[];
}
