import { ControlPlaneClient } from '../../cli/control-plane-client';
import type { ApplyResponse, Binding, PhysicalEndpoint, Policy } from '../../src/proto/types';
import { monotonicMs } from './messages';
import { round } from './report';
import { EMPTY_POLICY } from '../../src/model/policy-defaults';

/** The one agent-like host every endpoint is on. */
export const HOST_ID = 'gw1';
export const AGENT_METADATA = { socketPlane: '127.0.0.1:15020' };
/** The Policy every binding references, so that one change reaches every sidecar. */
export const SHARED_POLICY = 'bench-shared';
export const BAUD_RATES = [9600, 19200] as const;
export const INITIAL_BYTES_PER_SECOND = 100_000;

const pad = (i: number): string => String(i).padStart(5, '0');

export function workloadId(i: number): string {
  return `bench-w${pad(i)}`;
}

function devicePath(i: number): string {
  return `/dev/bench/tty${pad(i)}`;
}

export function endpoint(i: number): PhysicalEndpoint {
  return {
    id: '',
    hostId: HOST_ID,
    deviceId: `bench-dev-${pad(i)}`,
    kind: 'DEVICE_KIND_SERIAL',
    path: devicePath(i),
    capabilities: [],
    state: 'ENDPOINT_STATE_PRESENT',
    labels: {},
    updatedAt: null,
    configuration: {},
  };
}

/** Sidecar i's binding: its own device, its own listen address, raw, the shared policy. */
export function binding(i: number, baudRate: number): Binding {
  return {
    name: `bench-b${pad(i)}`,
    workload: workloadId(i),
    device: { host: HOST_ID, path: devicePath(i), id: '' },
    virtual: { workloadId: workloadId(i), name: 'dev0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: `127.0.0.1:${20_000 + i}` },
    policy: null,
    policyRef: SHARED_POLICY,
    settings: {},
    serial: { baudRate, dataBits: 0, parity: 'PARITY_UNSPECIFIED', stopBits: 'STOP_BITS_UNSPECIFIED', flowControl: 'FLOW_CONTROL_UNSPECIFIED' },
  };
}

export function sharedPolicy(bytesPerSecond: number): Policy {
  return { ...EMPTY_POLICY, name: SHARED_POLICY, sharing: 'SHARING_MODE_EXCLUSIVE', bytesPerSecond: String(bytesPerSecond) };
}

/** Generous: a change at 10,000 endpoints rewrites the whole state file. */
const RPC_TIMEOUT_MS = 120_000;

export function controlPlaneClient(address: string): ControlPlaneClient {
  return new ControlPlaneClient(address, RPC_TIMEOUT_MS);
}

export interface Registration {
  endpoints: number;
  totalMs: number;
  perSecond: number;
  /** Registrations per second over the first and the last tenth: how the cost grows with the register. */
  firstTenthPerSecond: number;
  lastTenthPerSecond: number;
}

/** Registers endpoints 0..count-1 through `devicemesh.v1.Registry/RegisterEndpoint`, `concurrency` calls at a time. */
export async function registerEndpoints(
  client: ControlPlaneClient,
  count: number,
  concurrency: number,
  progress: (done: number) => void,
): Promise<Registration> {
  const started = monotonicMs();
  const doneAt: number[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await client.call<PhysicalEndpoint>('Registry', 'RegisterEndpoint', { endpoint: endpoint(i) });
      doneAt.push(monotonicMs());
      if (doneAt.length % 1000 === 0) progress(doneAt.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  const totalMs = monotonicMs() - started;
  const tenth = Math.max(1, Math.floor(count / 10));
  const rate = (from: number, to: number): number => (tenth * 1000) / Math.max(to - from, 1e-3);
  return {
    endpoints: count,
    totalMs: round(totalMs),
    perSecond: round((count * 1000) / totalMs),
    firstTenthPerSecond: round(rate(started, doneAt[tenth - 1] as number)),
    lastTenthPerSecond: round(rate(doneAt[count - tenth - 1] ?? started, doneAt[count - 1] as number)),
  };
}

export function apply(client: ControlPlaneClient, bindings: Binding[], policies: Policy[]): Promise<ApplyResponse> {
  return client.call<ApplyResponse>('Bindings', 'Apply', { bindings, policies });
}
