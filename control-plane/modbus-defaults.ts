import type { Policy, VirtualProtocol } from '../src/proto/types';

const MODBUS_RTU = { kind: 'RESPONSE_FRAMING_MODBUS_RTU', terminator: '', length: 0, pattern: '', idleGapMs: 0 } as const;

/**
 * A modbus-tcp virtual device puts each request on the device's shared queue with Modbus RTU
 * framing: where no layer of the policy (`layers`) says otherwise, its sharing is shared and its
 * framing Modbus RTU. Returns why the merged policy cannot work, or undefined: Modbus RTU framing
 * outside shared / time-slice sharing (an exclusive byte pipe would hand MBAP frames to the bus), or
 * a modbus-tcp device with another framing.
 */
export function applyModbusDefaults(protocol: VirtualProtocol | undefined, policy: Policy, layers: readonly Policy[]): string | undefined {
  const modbusTcp = protocol === 'VIRTUAL_PROTOCOL_MODBUS_TCP';
  if (modbusTcp) {
    if (!layers.some((p) => p.sharing !== 'SHARING_MODE_UNSPECIFIED')) policy.sharing = 'SHARING_MODE_SHARED';
    if (!layers.some((p) => p.response && p.response.kind !== 'RESPONSE_FRAMING_UNSPECIFIED')) policy.response = { ...MODBUS_RTU };
  }
  const rtu = policy.response?.kind === 'RESPONSE_FRAMING_MODBUS_RTU';
  if (modbusTcp && !rtu) return `a modbus-tcp virtual device needs response framing "modbus: rtu", not ${policy.response?.kind ?? 'none'}`;
  if (rtu && policy.sharing !== 'SHARING_MODE_SHARED' && policy.sharing !== 'SHARING_MODE_TIME_SLICE') {
    return `Modbus RTU framing needs shared or time-slice sharing, not ${policy.sharing}`;
  }
  return undefined;
}
