import { formatRate } from '../../control-plane/bandwidth/format-rate';
import { buildOverview } from '../../control-plane/dashboard/build-overview';
import type {
  AdaptationOverview,
  BindingOverview,
  BindingRates,
  MappingOverview,
  MeshOverview,
  ProxyOverview,
  RoamingMoveOverview,
} from '../../src/admin/mesh-overview';
import { errorMessage, NotFoundError, ValidationError } from '../../src/errors';
import type { Binding, ListBindingsResponse, ListMappingsResponse, ListProxiesResponse, Mapping } from '../../src/proto/types';
import { isRoaming } from '../../src/model/roaming';
import { virtualAddress } from '../../src/model/virtual-address';
import { fetchOverview } from '../admin-client';
import { type FlagSpec, parseFlags } from '../flags';
import { CLIENT_FLAGS, clientFor } from './resources';

export const DESCRIBE_FLAGS: readonly FlagSpec[] = [
  { name: 'output', short: 'o', kind: 'string', default: 'text', help: 'text or json' },
  ...CLIENT_FLAGS,
  { name: 'admin', kind: 'address', default: '127.0.0.1:15000', help: 'control plane admin address (live rates and adaptive limit changes)' },
];

/** What `describe binding` shows; also its -o json document. */
export interface BindingDescription {
  binding: Binding;
  phase: string;
  message: string;
  mapping: Mapping | null;
  /** The mapping as the agent enforces it: merged policy, adaptive limit. */
  effective: MappingOverview | null;
  /** The proxies that carry the binding's mapping: its host's agent and its workload's sidecar. */
  proxies: ProxyOverview[];
  rates: BindingRates | null;
  /** Why there are no rates when the admin could not be asked. */
  ratesUnavailable: string;
  adaptation: AdaptationOverview[];
  /** A roaming binding's latest moves between gateways (from the admin, as the rates). */
  moves: RoamingMoveOverview[];
  errors: string[];
}

/** `devicemesh describe binding NAME`: the binding, its mapping and effective policy, proxies, live rates, recent errors. */
export async function describeResource(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const flags = parseFlags('describe', args, DESCRIBE_FLAGS);
  const [kind, name, extra] = flags.positionals;
  if (kind !== 'binding' || !name || extra !== undefined) throw new ValidationError('', 'usage: devicemesh describe binding NAME [-o json]');
  const format = flags.values.output;
  if (format !== 'text' && format !== 'json') throw new ValidationError('', `flag --output: "${format}" is not one of text, json`);
  const client = clientFor(flags.values);
  let description: BindingDescription;
  try {
    const [bindings, mappings, proxies] = await Promise.all([
      client.call<ListBindingsResponse>('Bindings', 'List', {}),
      client.call<ListMappingsResponse>('Bindings', 'ListMappings', {}),
      client.call<ListProxiesResponse>('Status', 'ListProxies', {}),
    ]);
    const status = bindings.bindings.find((s) => s.binding?.name === name);
    if (!status?.binding) throw new NotFoundError(`binding ${name} not found`);
    const mapping = mappings.mappings.find((m) => m.binding === name) ?? null;
    const local = buildOverview({
      version: '',
      hosts: [],
      endpoints: [],
      bindings: [status],
      mappings: mapping ? [mapping] : [],
      proxies: proxies.proxies,
      adaptation: [],
      roamingMoves: [],
      load: () => undefined,
      now: Date.now(),
    });
    let live: MeshOverview | undefined;
    let ratesUnavailable = '';
    try {
      live = await fetchOverview(flags.values.admin as string);
    } catch (err) {
      ratesUnavailable = errorMessage(err);
    }
    description = describeBinding(status.binding, local.bindings[0] as BindingOverview, mapping, local.proxies, live, ratesUnavailable);
  } finally {
    client.close();
  }
  out.write(format === 'json' ? JSON.stringify(description, null, 2) + '\n' : renderDescription(description));
}

function describeBinding(
  binding: Binding,
  overview: BindingOverview,
  mapping: Mapping | null,
  allProxies: readonly ProxyOverview[],
  live: MeshOverview | undefined,
  ratesUnavailable: string,
): BindingDescription {
  const proxies = allProxies.filter(
    (p) => (p.kind === 'sidecar' && p.nodeId === binding.workload) || (mapping !== null && p.kind === 'agent' && p.nodeId === mapping.hostId),
  );
  const rates = live?.bindings.find((b) => b.name === binding.name)?.rates ?? null;
  const errors: string[] = [];
  if (overview.phase !== 'MAPPED') errors.push(`binding is ${overview.phase}${overview.message ? `: ${overview.message}` : ''}`);
  for (const p of proxies) for (const t of p.types) if (t.nack) errors.push(`${p.name} rejected version ${t.sent} of ${t.type}: ${t.nack}`);
  if (rates && (rates.droppedBytes > 0 || rates.droppedCommands > 0)) {
    errors.push(`over its rate limit: ${rates.droppedBytes} bytes and ${rates.droppedCommands} commands dropped since the agent started`);
  }
  return {
    binding,
    phase: overview.phase,
    message: overview.message,
    mapping,
    effective: overview.mapping,
    proxies,
    rates,
    ratesUnavailable,
    adaptation: (live?.adaptation ?? []).filter((e) => e.binding === binding.name).slice(-10),
    moves: (live?.roamingMoves ?? []).filter((e) => e.binding === binding.name).slice(-10),
    errors,
  };
}

function renderDescription(d: BindingDescription): string {
  const lines: string[] = [];
  const row = (label: string, value: string | number, indent = ''): void => {
    lines.push(`${indent}${`${label}:`.padEnd(indent ? 18 : 20)}${value}`);
  };
  const b = d.binding;
  row('Name', b.name);
  row('Workload', b.workload);
  row('Device', !b.device ? '' : isRoaming(b.device) ? `${b.device.id} (roaming: whichever gateway reports it)` : `${b.device.host}:${b.device.path || b.device.id}`);
  row('Virtual', b.virtual ? virtualAddress(b.virtual) : '');
  row('Phase', d.phase);
  if (d.message) row('Message', d.message);
  const m = d.effective;
  if (!m) {
    row('Mapping', 'none');
  } else {
    const p = m.policy;
    row('Mapping', `${m.id} (version ${m.version})`);
    row('Physical', m.physicalId, '  ');
    row('Agent', m.agentAddress, '  ');
    lines.push('Effective policy:');
    row('Sharing', p.sharing, '  ');
    row('Access', p.access, '  ');
    const own = p.bytesPerSecond > 0 ? formatRate(p.bytesPerSecond) : 'unlimited';
    row('Rate limit', m.adaptiveLimit > 0 ? `${formatRate(m.adaptiveLimit)} (adaptive: ${m.adaptiveReason}; policy ${own})` : own, '  ');
    row('Commands limit', p.commandsPerSecond > 0 ? `${p.commandsPerSecond}/s` : 'unlimited', '  ');
    row('Over limit', p.overLimit, '  ');
    row('Queue depth', p.queueDepth, '  ');
    row('Command timeout', `${p.commandTimeoutMs} ms`, '  ');
    row('Priority', p.priority, '  ');
    if (m.roaming) row('Roaming hold', `${p.roamingHoldMs} ms`, '  ');
  }
  lines.push('Proxies:');
  if (d.proxies.length === 0) lines.push('  none connected');
  for (const p of d.proxies) {
    const t = p.types[0];
    const versions = t ? `sent ${t.sent || '-'}, acked ${t.acked || '-'}` : '';
    lines.push(`  ${p.name.padEnd(24)}${(t?.state ?? 'NOT SENT').padEnd(10)}${versions}${t?.nack ? `, NACK: ${t.nack}` : ''}`);
  }
  if (d.rates) {
    lines.push('Live rates:');
    row('Bytes', formatRate(d.rates.bytesPerSecond), '  ');
    row('Commands', `${d.rates.commandsPerSecond.toFixed(1)}/s`, '  ');
    row('Throttled', d.rates.throttled ? 'yes' : 'no', '  ');
    row('Dropped', `${d.rates.droppedBytes} bytes, ${d.rates.droppedCommands} commands`, '  ');
  } else {
    row('Live rates', d.ratesUnavailable ? `unavailable: ${d.ratesUnavailable}` : 'none (no open session reported by the agent)');
  }
  if (d.adaptation.length === 0) {
    row('Limit changes', 'none');
  } else {
    lines.push('Limit changes:');
    for (const e of d.adaptation) {
      lines.push(`  ${new Date(e.at).toISOString()}  ${e.from ? formatRate(e.from) : 'none'} → ${e.to ? formatRate(e.to) : 'none'}  ${e.reason}`);
    }
  }
  if (b.device && isRoaming(b.device)) {
    if (d.moves.length === 0) {
      row('Moves', d.ratesUnavailable ? `unavailable: ${d.ratesUnavailable}` : 'none');
    } else {
      lines.push('Moves:');
      for (const e of d.moves) lines.push(`  ${new Date(e.at).toISOString()}  ${e.from} → ${e.to}  (version ${e.version}, no gateway for ${e.awayMs} ms)`);
    }
  }
  if (d.errors.length === 0) {
    row('Recent errors', 'none');
  } else {
    lines.push('Recent errors:');
    for (const e of d.errors) lines.push(`  ${e}`);
  }
  return lines.join('\n') + '\n';
}
