import type { Access, FlowControl, OverLimit, Parity, SharingMode, StopBits, VirtualProtocol } from '../proto/types';

export const OVER_LIMIT: Readonly<Record<string, OverLimit>> = {
  slow: 'OVER_LIMIT_SLOW',
  drop: 'OVER_LIMIT_DROP',
};

/** The words a Binding document uses, and the proto enum values they stand for. */
export const SHARING: Readonly<Record<string, SharingMode>> = {
  exclusive: 'SHARING_MODE_EXCLUSIVE',
  shared: 'SHARING_MODE_SHARED',
  'time-slice': 'SHARING_MODE_TIME_SLICE',
  broadcast: 'SHARING_MODE_BROADCAST',
};

export const ACCESS: Readonly<Record<string, Access>> = {
  'read-write': 'ACCESS_READ_WRITE',
  'read-only': 'ACCESS_READ_ONLY',
};

export const PROTOCOL: Readonly<Record<string, VirtualProtocol>> = {
  raw: 'VIRTUAL_PROTOCOL_RAW',
  rfc2217: 'VIRTUAL_PROTOCOL_RFC2217',
  grpc: 'VIRTUAL_PROTOCOL_GRPC',
  pty: 'VIRTUAL_PROTOCOL_PTY',
  'modbus-tcp': 'VIRTUAL_PROTOCOL_MODBUS_TCP',
};

export const PARITY: Readonly<Record<string, Parity>> = {
  none: 'PARITY_NONE',
  even: 'PARITY_EVEN',
  odd: 'PARITY_ODD',
  mark: 'PARITY_MARK',
  space: 'PARITY_SPACE',
};

export const STOP_BITS: Readonly<Record<string, StopBits>> = {
  '1': 'STOP_BITS_ONE',
  '1.5': 'STOP_BITS_ONE_POINT_FIVE',
  '2': 'STOP_BITS_TWO',
};

export const FLOW_CONTROL: Readonly<Record<string, FlowControl>> = {
  none: 'FLOW_CONTROL_NONE',
  rtscts: 'FLOW_CONTROL_RTSCTS',
  xonxoff: 'FLOW_CONTROL_XONXOFF',
};

/** The document word for a proto enum value, for printing (`SHARING_MODE_TIME_SLICE` → `time-slice`). */
export function wordFor<T extends string>(table: Readonly<Record<string, T>>, value: T): string {
  for (const [word, v] of Object.entries(table)) if (v === value) return word;
  return '';
}
