import { type ErrorCode, ProtocolError } from '../errors';
import { decodeError, encodeError } from './control-messages';

/**
 * What a consumer can ask of a device besides its byte stream. `target` names the part of the
 * device (a modem line, a GPIO line, a sensor channel); `value` and `data` are the argument.
 * Each driver handles the operations of its kind and refuses the others.
 */
export enum CommandOp {
  /**
   * Serial: set `target` "dtr", "rts" or "brk" (BREAK held until set to 0) to `value` (0 or 1).
   * The result's `data` is "virtual" where the port has no modem-control lines and the state is
   * only kept by the agent.
   */
  SerialSetLine = 1,
  /** Serial: read the modem lines; the result's `value` has the ModemLine bits set. */
  SerialGetLines = 2,
  /** Serial: send a break of `value` milliseconds (0: the driver's default). */
  SerialBreak = 3,
  /** Serial: discard what is buffered in both directions. */
  SerialFlush = 4,
  /** Serial: wait until everything written has gone out on the line. */
  SerialDrain = 5,
  /**
   * Serial: set one line setting, numbered as RFC 2217 numbers it (so an RFC 2217 server passes
   * them through): `target` "baudRate" (bits/s), "dataBits" (5..8), "parity" (1 none, 2 odd,
   * 3 even, 4 mark, 5 space), "stopBits" (1 one, 2 two, 3 one and a half) or "flowControl"
   * (1 none, 2 XON/XOFF, 3 RTS/CTS). `value` 0 asks for the current setting. The result's
   * `value` is the setting in use afterwards: the requested one once applied, the mapping's
   * where its policy pins the line settings.
   */
  SerialConfigure = 6,
  /** HID: send `data` (report id first) as an output report. */
  HidWrite = 10,
  /** HID: send `data` (report id first) as a feature report. */
  HidSendFeature = 11,
  /** HID: read feature report `value` of `target`-bytes length ("" : 64); the result's `data` is the report. */
  HidGetFeature = 12,
  /** GPIO: read line `target`; the result's `value` is 0 or 1. */
  GpioGet = 20,
  /** GPIO: drive output line `target` to `value` (0 or 1). */
  GpioSet = 21,
  /** GPIO: make line `target` an input (`value` 0) or an output (`value` 1). */
  GpioSetDirection = 22,
  /** Sensor: sample channel `target` now; the result's `value` is in its unit, `data` the unit's name. */
  SensorRead = 30,
  /** Instrument: send the SCPI command in `data` and read its answer into the result's `data`. */
  ScpiQuery = 40,
  /** Instrument: send the SCPI command in `data`; no answer is read. */
  ScpiWrite = 41,
}

export interface DeviceCommand {
  op: CommandOp;
  target: string;
  value: number;
  data: Buffer;
}

/** A command on the wire: the consumer's request id comes back in its result. */
export interface CommandRequest extends DeviceCommand {
  requestId: number;
}

export interface CommandReply {
  value: number;
  data: Buffer;
}

export type CommandResult =
  | { requestId: number; ok: true; value: number; data: Buffer }
  | { requestId: number; ok: false; code: ErrorCode; message: string };

const KNOWN_OPS = new Set<number>(Object.values(CommandOp).filter((v): v is number => typeof v === 'number'));
const MAX_TARGET = 255;
/** requestId u32 | op u8 | target length u8 | target | value f64 | data… */
const COMMAND_FIXED = 4 + 1 + 1 + 8;
/** requestId u32 | status u8 (0 ok, 1 error) | value f64 | data… (an error: its ErrorPayload JSON) */
const RESULT_FIXED = 4 + 1 + 8;

export function encodeCommand(cmd: CommandRequest): Buffer {
  const target = Buffer.from(cmd.target, 'utf8');
  if (target.length > MAX_TARGET) throw new ProtocolError(`command target is ${target.length} bytes (at most ${MAX_TARGET})`);
  const out = Buffer.allocUnsafe(COMMAND_FIXED + target.length + cmd.data.length);
  let o = out.writeUInt32BE(cmd.requestId >>> 0, 0);
  o = out.writeUInt8(cmd.op, o);
  o = out.writeUInt8(target.length, o);
  o += target.copy(out, o);
  o = out.writeDoubleBE(cmd.value, o);
  cmd.data.copy(out, o);
  return out;
}

export function decodeCommand(payload: Buffer): CommandRequest {
  if (payload.length < COMMAND_FIXED) throw new ProtocolError(`COMMAND payload of ${payload.length} bytes is shorter than its ${COMMAND_FIXED}-byte header`);
  const requestId = payload.readUInt32BE(0);
  const op = payload.readUInt8(4);
  if (!KNOWN_OPS.has(op)) throw new ProtocolError(`unknown command op ${op}`);
  const targetLength = payload.readUInt8(5);
  if (payload.length < COMMAND_FIXED + targetLength) throw new ProtocolError(`COMMAND target of ${targetLength} bytes overruns the payload`);
  const target = payload.toString('utf8', 6, 6 + targetLength);
  const value = payload.readDoubleBE(6 + targetLength);
  const data = Buffer.from(payload.subarray(COMMAND_FIXED + targetLength));
  return { requestId, op: op as CommandOp, target, value, data };
}

export function encodeCommandResult(result: CommandResult): Buffer {
  const body = result.ok ? result.data : encodeError({ code: result.code, message: result.message });
  const out = Buffer.allocUnsafe(RESULT_FIXED + body.length);
  let o = out.writeUInt32BE(result.requestId >>> 0, 0);
  o = out.writeUInt8(result.ok ? 0 : 1, o);
  o = out.writeDoubleBE(result.ok ? result.value : 0, o);
  body.copy(out, o);
  return out;
}

export function decodeCommandResult(payload: Buffer): CommandResult {
  if (payload.length < RESULT_FIXED) throw new ProtocolError(`COMMAND_RESULT payload of ${payload.length} bytes is shorter than its ${RESULT_FIXED}-byte header`);
  const requestId = payload.readUInt32BE(0);
  const status = payload.readUInt8(4);
  const body = payload.subarray(RESULT_FIXED);
  if (status === 0) return { requestId, ok: true, value: payload.readDoubleBE(5), data: Buffer.from(body) };
  if (status !== 1) throw new ProtocolError(`unknown COMMAND_RESULT status ${status}`);
  const err = decodeError(body);
  return { requestId, ok: false, code: err.code, message: err.message };
}
