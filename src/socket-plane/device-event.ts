import { ProtocolError } from '../errors';

/** What happened on a device, as its agent saw it. */
export enum DeviceEventType {
  /** Serial modem lines changed. `value`: the ModemLine bits now set; `source`: the lines that changed, e.g. "dcd,cts". */
  ModemLines = 1,
  /** A GPIO edge. `source`: the line; `value`: 1 rising, 0 falling. */
  GpioEdge = 2,
  /** A HID input report. `value`: the report id (0 without numbered reports); `data`: the report. */
  HidInputReport = 3,
  /** A periodic sensor sample. `source`: the channel; `value`: in the channel's unit. */
  SensorSample = 4,
  /** A sensor channel crossed a configured threshold. `source`: "<channel>:above" or "<channel>:below"; `value`: the sample. */
  SensorThreshold = 5,
  /** The device reported a failure. `data`: the driver's message (UTF-8). */
  DeviceError = 6,
}

/** Bits of ModemLines events and of the serial GET_LINES result. */
export const ModemLine = { cts: 1, dsr: 2, dcd: 4, ri: 8 } as const;

export interface DeviceEvent {
  type: DeviceEventType;
  /** When the agent saw it: Unix epoch milliseconds, with a fraction down to microseconds. */
  timestampMs: number;
  source: string;
  value: number;
  data: Buffer;
}

const KNOWN = new Set<number>([1, 2, 3, 4, 5, 6]);
const MAX_SOURCE = 255;
/** type u8 | timestamp f64 | source length u8 | source | value f64 | data… */
const FIXED = 1 + 8 + 1 + 8;

/** Binary, not JSON: HID input reports and sensor samples can come a thousand a second. */
export function encodeDeviceEvent(event: DeviceEvent): Buffer {
  const source = Buffer.from(event.source, 'utf8');
  if (source.length > MAX_SOURCE) throw new ProtocolError(`event source is ${source.length} bytes (at most ${MAX_SOURCE})`);
  const out = Buffer.allocUnsafe(FIXED + source.length + event.data.length);
  let o = out.writeUInt8(event.type, 0);
  o = out.writeDoubleBE(event.timestampMs, o);
  o = out.writeUInt8(source.length, o);
  o += source.copy(out, o);
  o = out.writeDoubleBE(event.value, o);
  event.data.copy(out, o);
  return out;
}

export function decodeDeviceEvent(payload: Buffer): DeviceEvent {
  if (payload.length < FIXED) throw new ProtocolError(`EVENT payload of ${payload.length} bytes is shorter than its ${FIXED}-byte header`);
  const type = payload.readUInt8(0);
  if (!KNOWN.has(type)) throw new ProtocolError(`unknown event type ${type}`);
  const timestampMs = payload.readDoubleBE(1);
  const sourceLength = payload.readUInt8(9);
  if (payload.length < FIXED + sourceLength) throw new ProtocolError(`EVENT source of ${sourceLength} bytes overruns the payload`);
  const source = payload.toString('utf8', 10, 10 + sourceLength);
  const value = payload.readDoubleBE(10 + sourceLength);
  // A copy: the payload is a view of the connection's receive buffer.
  const data = Buffer.from(payload.subarray(FIXED + sourceLength));
  return { type, timestampMs, source, value, data };
}

/** The agent's clock for events: wall time with sub-millisecond resolution. */
export function eventTimestamp(): number {
  return performance.timeOrigin + performance.now();
}
