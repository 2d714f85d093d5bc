import { DEFAULT_POLICY, DEFAULT_RESPONSE, perConsumerQueueFor } from '../src/model/policy-defaults';
import type { Binding, Policy, SerialConfig } from '../src/proto/types';
import { applyModbusDefaults } from './modbus-defaults';

export const DEFAULT_SERIAL: Readonly<SerialConfig> = Object.freeze({
  baudRate: 115200,
  dataBits: 8,
  parity: 'PARITY_NONE',
  stopBits: 'STOP_BITS_ONE',
  flowControl: 'FLOW_CONTROL_NONE',
});

export type EffectivePolicy =
  | { refused: false; policy: Policy; serial: SerialConfig }
  | { refused: true; reason: string };

/** 0, '' and *_UNSPECIFIED are proto3's "not set": such a field falls through to the layer below. */
function isSet(value: string | number): boolean {
  return value !== 0 && value !== '' && value !== '0' && !(typeof value === 'string' && value.endsWith('_UNSPECIFIED'));
}

function pick<T extends string | number>(fallback: T, ...layers: T[]): T {
  let out = fallback;
  for (const v of layers) if (isSet(v)) out = v;
  return out;
}

/**
 * Merges defaults, the referenced Policy document and the binding's inline policy (later layers
 * win field by field) and the binding's serial settings over the serial defaults. A layer with a
 * non-empty `workloads` list admits only those workloads.
 */
export function effectivePolicy(binding: Binding, policies: Pick<ReadonlyMap<string, Policy>, 'get'>): EffectivePolicy {
  const layers: { policy: Policy; label: string }[] = [];
  if (binding.policyRef) {
    const referenced = policies.get(binding.policyRef);
    if (!referenced) return { refused: true, reason: `policy "${binding.policyRef}" does not exist` };
    layers.push({ policy: referenced, label: `policy "${binding.policyRef}"` });
  }
  if (binding.policy) layers.push({ policy: binding.policy, label: "the binding's inline policy" });

  for (const { policy, label } of layers) {
    if (policy.workloads.length > 0 && !policy.workloads.includes(binding.workload)) {
      return {
        refused: true,
        reason: `workload "${binding.workload}" is not allowed by ${label} (allowed: ${policy.workloads.join(', ')})`,
      };
    }
  }

  const ps = layers.map((l) => l.policy);
  const workloads = [...ps].reverse().find((p) => p.workloads.length > 0)?.workloads ?? [];
  const policy: Policy = {
    name: binding.policyRef,
    workloads: [...workloads],
    access: pick(DEFAULT_POLICY.access, ...ps.map((p) => p.access)),
    sharing: pick(DEFAULT_POLICY.sharing, ...ps.map((p) => p.sharing)),
    bytesPerSecond: pick(DEFAULT_POLICY.bytesPerSecond, ...ps.map((p) => p.bytesPerSecond)),
    queueDepth: pick(DEFAULT_POLICY.queueDepth, ...ps.map((p) => p.queueDepth)),
    commandTimeoutMs: pick(DEFAULT_POLICY.commandTimeoutMs, ...ps.map((p) => p.commandTimeoutMs)),
    priority: pick(DEFAULT_POLICY.priority, ...ps.map((p) => p.priority)),
    // Pinned by any layer is pinned: a binding cannot unpin what its Policy document pins.
    pinSerial: ps.some((p) => p.pinSerial),
    commandsPerSecond: pick(DEFAULT_POLICY.commandsPerSecond, ...ps.map((p) => p.commandsPerSecond)),
    burstBytes: pick(DEFAULT_POLICY.burstBytes, ...ps.map((p) => p.burstBytes)),
    burstCommands: pick(DEFAULT_POLICY.burstCommands, ...ps.map((p) => p.burstCommands)),
    overLimit: pick(DEFAULT_POLICY.overLimit, ...ps.map((p) => p.overLimit)),
    requestTerminator: pick(DEFAULT_POLICY.requestTerminator, ...ps.map((p) => p.requestTerminator)),
    response: { ...([...ps].reverse().find((p) => p.response && p.response.kind !== 'RESPONSE_FRAMING_UNSPECIFIED')?.response ?? DEFAULT_RESPONSE) },
    perConsumerQueue: 0,
    timeSliceMs: pick(DEFAULT_POLICY.timeSliceMs, ...ps.map((p) => p.timeSliceMs)),
    weight: pick(DEFAULT_POLICY.weight, ...ps.map((p) => p.weight)),
    unsolicitedOwner: pick(DEFAULT_POLICY.unsolicitedOwner, ...ps.map((p) => p.unsolicitedOwner)),
    waitWhenBusy: ps.some((p) => p.waitWhenBusy),
    readyPattern: pick(DEFAULT_POLICY.readyPattern, ...ps.map((p) => p.readyPattern)),
    minBytesPerSecond: pick(DEFAULT_POLICY.minBytesPerSecond, ...ps.map((p) => p.minBytesPerSecond)),
    deviceBytesPerSecond: pick(DEFAULT_POLICY.deviceBytesPerSecond, ...ps.map((p) => p.deviceBytesPerSecond)),
    units: [...([...ps].reverse().find((p) => p.units.length > 0)?.units ?? [])],
    roamingHoldMs: pick(DEFAULT_POLICY.roamingHoldMs, ...ps.map((p) => p.roamingHoldMs)),
  };
  policy.perConsumerQueue = pick(perConsumerQueueFor(policy.queueDepth), ...ps.map((p) => p.perConsumerQueue));

  const s = binding.serial;
  const serial: SerialConfig = {
    baudRate: pick(DEFAULT_SERIAL.baudRate, s?.baudRate ?? 0),
    dataBits: pick(DEFAULT_SERIAL.dataBits, s?.dataBits ?? 0),
    parity: pick(DEFAULT_SERIAL.parity, s?.parity ?? 'PARITY_UNSPECIFIED'),
    stopBits: pick(DEFAULT_SERIAL.stopBits, s?.stopBits ?? 'STOP_BITS_UNSPECIFIED'),
    flowControl: pick(DEFAULT_SERIAL.flowControl, s?.flowControl ?? 'FLOW_CONTROL_UNSPECIFIED'),
  };
  if (typeof s?.dtr === 'boolean') serial.dtr = s.dtr;
  if (typeof s?.rts === 'boolean') serial.rts = s.rts;

  const modbus = applyModbusDefaults(binding.virtual?.protocol, policy, ps);
  if (modbus !== undefined) return { refused: true, reason: modbus };
  return { refused: false, policy, serial };
}
