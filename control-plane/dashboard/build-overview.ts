import type {
  AdaptationOverview,
  BindingOverview,
  BindingRates,
  HostOverview,
  MappingOverview,
  MeshOverview,
  ProxyOverview,
  RoamingMoveOverview,
} from '../../src/admin/mesh-overview';
import { ACCESS, OVER_LIMIT, SHARING, wordFor } from '../../src/documents/enum-names';
import { virtualAddress } from '../../src/model/virtual-address';
import { DEFAULT_POLICY } from '../../src/model/policy-defaults';
import type { BindingLoadReport, BindingStatus, Host, Mapping, PhysicalEndpoint, ProxyStatus } from '../../src/proto/types';
import type { AdaptationEvent } from '../bandwidth/adaptation-events';

/** What the overview is made of, read from the control plane's state at one moment. */
export interface OverviewInput {
  version: string;
  hosts: readonly Host[];
  endpoints: readonly PhysicalEndpoint[];
  bindings: readonly BindingStatus[];
  mappings: readonly Mapping[];
  proxies: readonly ProxyStatus[];
  adaptation: readonly AdaptationEvent[];
  roamingMoves: readonly RoamingMoveOverview[];
  /** The binding's entry of its host's latest fresh load report, with when it arrived (ms). */
  load(hostId: string, mappingId: string): { report: BindingLoadReport; receivedAt: number } | undefined;
  now: number;
}

/** The mesh as the dashboard and `describe binding` show it; pure, sorted by name. */
export function buildOverview(input: OverviewInput): MeshOverview {
  const mappingsByBinding = new Map(input.mappings.map((m) => [m.binding, m]));
  return {
    version: input.version,
    generatedAt: input.now,
    hosts: hostsOf(input),
    bindings: input.bindings
      .filter((s) => s.binding !== null)
      .map((s) => bindingOf(s, mappingsByBinding.get(s.binding?.name ?? ''), input))
      .sort((a, b) => a.name.localeCompare(b.name)),
    proxies: input.proxies.map(proxyOf).sort((a, b) => a.name.localeCompare(b.name)),
    adaptation: input.adaptation.map(
      (e): AdaptationOverview => ({ binding: e.binding, device: e.device, from: e.from, to: e.to, reason: e.reason, at: e.at }),
    ),
    roamingMoves: [...input.roamingMoves],
  };
}

function hostsOf(input: OverviewInput): HostOverview[] {
  const hosts = new Map<string, HostOverview>();
  for (const h of input.hosts) hosts.set(h.id, { id: h.id, state: strip(h.state, 'HOST_STATE_'), socketPlane: h.socketPlaneAddress, devices: [] });
  for (const e of input.endpoints) {
    let host = hosts.get(e.hostId);
    if (!host) {
      host = { id: e.hostId, state: 'UNKNOWN', socketPlane: '', devices: [] };
      hosts.set(e.hostId, host);
    }
    host.devices.push({ id: e.id, path: e.path, kind: strip(e.kind, 'DEVICE_KIND_'), state: strip(e.state, 'ENDPOINT_STATE_') });
  }
  const sorted = [...hosts.values()].sort((a, b) => a.id.localeCompare(b.id));
  for (const h of sorted) h.devices.sort((a, b) => a.id.localeCompare(b.id));
  return sorted;
}

function bindingOf(status: BindingStatus, mapping: Mapping | undefined, input: OverviewInput): BindingOverview {
  const b = status.binding;
  const load = mapping ? input.load(mapping.hostId, mapping.id) : undefined;
  const rates: BindingRates | null = load
    ? {
        bytesPerSecond: load.report.bytesPerSecond,
        commandsPerSecond: load.report.commandsPerSecond,
        throttled: load.report.throttled,
        droppedBytes: Number(load.report.droppedBytes),
        droppedCommands: Number(load.report.droppedCommands),
        reportedAt: load.receivedAt,
      }
    : null;
  return {
    name: b?.name ?? '',
    workload: b?.workload ?? '',
    device: b?.device ? `${b.device.host}:${b.device.path || b.device.id}` : '',
    virtual: b?.virtual ? virtualAddress(b.virtual) : '',
    phase: strip(status.phase, 'BINDING_PHASE_'),
    message: status.message,
    mapping: mapping ? mappingOf(mapping) : null,
    rates,
  };
}

function mappingOf(m: Mapping): MappingOverview {
  const p = m.policy;
  return {
    id: m.id,
    version: m.version,
    physicalId: m.physicalId,
    hostId: m.hostId,
    agentAddress: m.agentAddress,
    policy: {
      sharing: (p && wordFor(SHARING, p.sharing)) || 'exclusive',
      access: (p && wordFor(ACCESS, p.access)) || 'read-write',
      bytesPerSecond: Number(p?.bytesPerSecond ?? '0'),
      commandsPerSecond: p?.commandsPerSecond ?? 0,
      queueDepth: p?.queueDepth || DEFAULT_POLICY.queueDepth,
      commandTimeoutMs: p?.commandTimeoutMs || DEFAULT_POLICY.commandTimeoutMs,
      priority: p?.priority ?? 0,
      overLimit: (p && wordFor(OVER_LIMIT, p.overLimit)) || 'slow',
      roamingHoldMs: p?.roamingHoldMs || DEFAULT_POLICY.roamingHoldMs,
    },
    adaptiveLimit: Number(m.adaptiveLimit?.bytesPerSecond ?? '0'),
    adaptiveReason: m.adaptiveLimit?.reason ?? '',
    roaming: m.roaming,
  };
}

function proxyOf(p: ProxyStatus): ProxyOverview {
  return {
    name: `${p.kind}/${p.nodeId}`,
    kind: p.kind,
    nodeId: p.nodeId,
    peer: p.peer,
    types: p.types.map((t) => ({
      type: t.typeUrl.replace('type.googleapis.com/', ''),
      sent: t.sentVersion,
      acked: t.ackedVersion,
      state: strip(t.state, 'SYNC_STATE_').replace('_', ' '),
      nack: t.nackMessage,
    })),
  };
}

function strip(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value.slice(prefix.length) : value;
}
