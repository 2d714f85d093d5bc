import { ValidationError } from '../../src/errors';
import { parseDocuments } from '../../src/documents/documents';
import { SHARING, wordFor } from '../../src/documents/enum-names';
import type {
  PhysicalEndpoint,
  ApplyResponse,
  ListBindingsResponse,
  ListEndpointsResponse,
  ListMappingsResponse,
  ListProxiesResponse,
  Mapping,
} from '../../src/proto/types';
import { virtualAddress } from '../../src/model/virtual-address';
import { conflictingDeviceIds } from '../../src/model/roaming';
import { formatRate } from '../../control-plane/bandwidth/format-rate';
import { clientSecurity, ControlPlaneClient } from '../control-plane-client';
import { readDocumentFile } from '../document-file';
import { type FlagSpec, parseFlags } from '../flags';
import { renderTable } from '../table';

const CONTROL_PLANE: FlagSpec = {
  name: 'control-plane',
  kind: 'address',
  default: '127.0.0.1:15010',
  help: 'control plane gRPC address',
};

/** Every command that talks to the control plane: where it is and how to trust and be trusted by it. */
export const CLIENT_FLAGS: readonly FlagSpec[] = [
  CONTROL_PLANE,
  { name: 'ca-file', kind: 'string', help: 'the mesh\'s CA bundle (<data-dir>/ca/bundle.crt)' },
  { name: 'operator-token-file', kind: 'string', help: 'file with the operator credential (<data-dir>/operator.token)' },
  { name: 'operator-token', kind: 'string', secret: { safer: '--operator-token-file FILE' }, help: 'the operator credential itself; prefer --operator-token-file or DEVICEMESH_OPERATOR_TOKEN' },
  { name: 'insecure', kind: 'boolean', help: 'plaintext, for a control plane run with --insecure' },
];

/** A client for the flags' control plane, with their security. */
export function clientFor(values: Readonly<Record<string, string>>, timeoutMs?: number): ControlPlaneClient {
  return new ControlPlaneClient(values['control-plane'] as string, timeoutMs, clientSecurity(values));
}

export const APPLY_FLAGS: readonly FlagSpec[] = [
  { name: 'filename', short: 'f', kind: 'string', required: true, help: 'YAML or JSON file of Binding / Policy documents ("-" for stdin)' },
  ...CLIENT_FLAGS,
];
export const DELETE_FLAGS: readonly FlagSpec[] = CLIENT_FLAGS;
export const GET_FLAGS: readonly FlagSpec[] = [
  { name: 'output', short: 'o', kind: 'string', default: 'table', help: 'table or json' },
  ...CLIENT_FLAGS,
];

export async function apply(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const flags = parseFlags('apply', args, APPLY_FLAGS);
  if (flags.positionals.length > 0) throw new ValidationError('', `unexpected argument "${flags.positionals[0]}"`);
  const file = flags.values.filename as string;
  const text = readDocumentFile(file);
  const request = parseDocuments(text, file === '-' ? 'stdin' : file);
  const client = clientFor(flags.values);
  try {
    const res = await client.call<ApplyResponse>('Bindings', 'Apply', request);
    for (const line of res.results) out.write(`${line}\n`);
  } finally {
    client.close();
  }
}

export async function remove(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const flags = parseFlags('delete', args, DELETE_FLAGS);
  const [kind, name, extra] = flags.positionals;
  if (kind !== 'binding' && kind !== 'policy') {
    throw new ValidationError('', 'usage: devicemesh delete binding|policy NAME');
  }
  if (!name || extra !== undefined) throw new ValidationError('', `usage: devicemesh delete ${kind} NAME`);
  const client = clientFor(flags.values);
  try {
    await client.call('Bindings', 'Delete', { kind, name });
    out.write(`${kind}/${name} deleted\n`);
  } finally {
    client.close();
  }
}

const GETTERS = {
  endpoints: { service: 'Registry', method: 'ListEndpoints', render: renderEndpoints },
  bindings: { service: 'Bindings', method: 'List', render: renderBindings },
  mappings: { service: 'Bindings', method: 'ListMappings', render: renderMappings },
  proxies: { service: 'Status', method: 'ListProxies', render: renderProxies },
} as const;

export async function get(args: readonly string[], out: NodeJS.WritableStream): Promise<void> {
  const flags = parseFlags('get', args, GET_FLAGS);
  const [what, extra] = flags.positionals;
  const getter = GETTERS[what as keyof typeof GETTERS];
  if (!getter || extra !== undefined) {
    throw new ValidationError('', 'usage: devicemesh get endpoints|bindings|mappings|proxies [-o json]');
  }
  const format = flags.values.output;
  if (format !== 'table' && format !== 'json') throw new ValidationError('', `flag --output: "${format}" is not one of table, json`);
  const client = clientFor(flags.values);
  try {
    const res = await client.call<never>(getter.service, getter.method, {});
    out.write(format === 'json' ? JSON.stringify(res, null, 2) + '\n' : getter.render(res));
  } finally {
    client.close();
  }
}

function shortEnum(value: string, prefix: string): string {
  return value.startsWith(prefix) ? value.slice(prefix.length) : value;
}

/** The settings a person looks for first, e.g. "9600 8N1 rtscts"; the rest is in -o json. */
function configurationSummary(c: Readonly<Record<string, string>>): string {
  if (c.baudRate) return `${c.baudRate} ${c.dataBits ?? '?'}${(c.parity ?? '?').charAt(0).toUpperCase()}${c.stopBits ?? '?'} ${c.flowControl ?? ''}`.trim();
  return Object.entries(c)
    .slice(0, 3)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** One device id present on several hosts at once is a conflict (a roaming binding stays on the first): the state says so. */
function renderEndpoints(res: ListEndpointsResponse): string {
  const conflicts = conflictingDeviceIds(res.endpoints);
  const state = (e: PhysicalEndpoint): string => {
    const hosts = e.state === 'ENDPOINT_STATE_PRESENT' ? conflicts.get(e.deviceId) : undefined;
    const shown = shortEnum(e.state, 'ENDPOINT_STATE_');
    return hosts ? `${shown} (CONFLICT: ${e.deviceId} on ${hosts.join(', ')})` : shown;
  };
  return renderTable(
    ['ID', 'KIND', 'PATH', 'STATE', 'CONFIGURATION'],
    res.endpoints.map((e) => [e.id, shortEnum(e.kind, 'DEVICE_KIND_'), e.path, state(e), configurationSummary(e.configuration ?? {})]),
  );
}

function renderBindings(res: ListBindingsResponse): string {
  return renderTable(
    ['NAME', 'WORKLOAD', 'DEVICE', 'VIRTUAL', 'PHASE', 'MESSAGE'],
    res.bindings.map((s) => {
      const b = s.binding;
      const device = b?.device ? `${b.device.host}:${b.device.path || b.device.id}` : '';
      const virtual = b?.virtual ? virtualAddress(b.virtual) : '';
      return [b?.name ?? '', b?.workload ?? '', device, virtual, shortEnum(s.phase, 'BINDING_PHASE_'), s.message];
    }),
  );
}

function renderMappings(res: ListMappingsResponse): string {
  return renderTable(
    ['ID', 'WORKLOAD', 'VIRTUAL', 'DEVICE', 'AGENT', 'SHARING', 'LIMIT', 'VERSION'],
    res.mappings.map((m) => [
      m.id,
      m.workloadId,
      m.virtual ? virtualAddress(m.virtual) : '',
      `${m.hostId}:${m.devicePath}`,
      m.agentAddress,
      m.policy ? wordFor(SHARING, m.policy.sharing) : '',
      limitOf(m),
      m.version,
    ]),
  );
}

/** The byte rate a mapping is held to: the bandwidth controller's while it has set one, else its policy's. */
function limitOf(m: Mapping): string {
  const adaptive = Number(m.adaptiveLimit?.bytesPerSecond ?? '0');
  if (adaptive > 0) return `${formatRate(adaptive)} (adaptive)`;
  const own = Number(m.policy?.bytesPerSecond ?? '0');
  return own > 0 ? formatRate(own) : 'unlimited';
}

function renderProxies(res: ListProxiesResponse): string {
  const rows: string[][] = [];
  for (const p of res.proxies) {
    if (p.types.length === 0) rows.push([`${p.kind}/${p.nodeId}`, '', '', '', 'NOT SENT', '']);
    for (const t of p.types) {
      const state = shortEnum(t.state, 'SYNC_STATE_').replace('_', ' ');
      rows.push([
        `${p.kind}/${p.nodeId}`,
        t.typeUrl.replace('type.googleapis.com/', ''),
        t.sentVersion,
        t.ackedVersion,
        state,
        t.nackMessage,
      ]);
    }
  }
  return renderTable(['NAME', 'TYPE', 'SENT', 'ACKED', 'STATE', 'MESSAGE'], rows);
}
