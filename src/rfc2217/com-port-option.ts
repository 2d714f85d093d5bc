import { ProtocolError } from '../errors';
import { ModemLine } from '../socket-plane/device-event';
import { OPT_COM_PORT } from './telnet-codes';
import { subnegotiation } from './telnet-frames';

/** RFC 2217's commands as a client sends them; the server's answer is the same code plus SERVER_OFFSET. */
export enum ComPort {
  Signature = 0,
  SetBaudRate = 1,
  SetDataSize = 2,
  SetParity = 3,
  SetStopSize = 4,
  SetControl = 5,
  NotifyLineState = 6,
  NotifyModemState = 7,
  FlowControlSuspend = 8,
  FlowControlResume = 9,
  SetLineStateMask = 10,
  SetModemStateMask = 11,
  PurgeData = 12,
}

export const SERVER_OFFSET = 100;

/** SET-CONTROL values (RFC 2217 section 3). */
export enum Control {
  FlowQuery = 0,
  FlowNone = 1,
  FlowXonXoff = 2,
  FlowHardware = 3,
  BreakQuery = 4,
  BreakOn = 5,
  BreakOff = 6,
  DtrQuery = 7,
  DtrOn = 8,
  DtrOff = 9,
  RtsQuery = 10,
  RtsOn = 11,
  RtsOff = 12,
  InboundFlowQuery = 13,
  InboundFlowNone = 14,
  InboundFlowXonXoff = 15,
  InboundFlowHardware = 16,
  FlowDcd = 17,
  InboundFlowDtr = 18,
  FlowDsr = 19,
}

/** PURGE-DATA values (RFC 2217: 1 receive, 2 transmit, 3 both): what the bridge acts on is the receive bit. */
export const PURGE_RECEIVE = 1;
export const PURGE_BOTH = 3;

/** NOTIFY-MODEMSTATE bits. */
export const ModemState = {
  cd: 0x80,
  ri: 0x40,
  dsr: 0x20,
  cts: 0x10,
  deltaCd: 0x08,
  trailingRi: 0x04,
  deltaDsr: 0x02,
  deltaCts: 0x01,
} as const;

/** Width of each command's value in bytes; a signature's is free, the notifications' and flow control's none. */
const WIDTH: Readonly<Record<ComPort, number | 'text'>> = {
  [ComPort.Signature]: 'text',
  [ComPort.SetBaudRate]: 4,
  [ComPort.SetDataSize]: 1,
  [ComPort.SetParity]: 1,
  [ComPort.SetStopSize]: 1,
  [ComPort.SetControl]: 1,
  [ComPort.NotifyLineState]: 1,
  [ComPort.NotifyModemState]: 1,
  [ComPort.FlowControlSuspend]: 0,
  [ComPort.FlowControlResume]: 0,
  [ComPort.SetLineStateMask]: 1,
  [ComPort.SetModemStateMask]: 1,
  [ComPort.PurgeData]: 1,
};

/** A client's COM-PORT-OPTION subnegotiation: `value` for the numeric ones, `text` for a signature. */
export interface ComPortRequest {
  command: ComPort;
  value: number;
  text: Buffer;
}

const NO_TEXT = Buffer.alloc(0);

/**
 * Decodes the payload of IAC SB COM-PORT-OPTION … IAC SE (after the option byte). NOTIFY-LINESTATE
 * and NOTIFY-MODEMSTATE come from a client empty, as a poll (pyserial's `poll_modem`): value 0.
 */
export function decodeComPortRequest(payload: Buffer): ComPortRequest {
  if (payload.length === 0) throw new ProtocolError('COM-PORT-OPTION subnegotiation without a command');
  const code = payload[0] as number;
  const width = WIDTH[code as ComPort];
  if (width === undefined) throw new ProtocolError(`unknown COM-PORT-OPTION command ${code}`);
  const body = payload.subarray(1);
  const command = code as ComPort;
  if (width === 'text') return { command, value: 0, text: Buffer.from(body) };
  const polled = body.length === 0 && (command === ComPort.NotifyLineState || command === ComPort.NotifyModemState);
  if (body.length !== width && !polled) {
    throw new ProtocolError(`COM-PORT-OPTION ${ComPort[command]} carries ${body.length} value bytes, not ${width}`);
  }
  return { command, value: width === 0 || polled ? 0 : body.readUIntBE(0, width), text: NO_TEXT };
}

/** The server's IAC SB COM-PORT-OPTION <command + 100> <value> IAC SE, in the command's width. */
export function encodeComPortAnswer(command: ComPort, value: number | Buffer): Buffer {
  const width = WIDTH[command];
  let body: Buffer;
  if (typeof value !== 'number') body = value;
  else {
    const n = typeof width === 'number' ? width : 0;
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** (8 * n)) {
      throw new ProtocolError(`${ComPort[command]} answer ${value} does not fit in ${n} bytes`);
    }
    body = Buffer.alloc(n);
    if (n > 0) body.writeUIntBE(value, 0, n);
  }
  return subnegotiation(OPT_COM_PORT, Buffer.concat([Buffer.from([command + SERVER_OFFSET]), body]));
}

/** The NOTIFY-MODEMSTATE state bits (no deltas) of a ModemLine bit set. */
export function modemState(lines: number): number {
  return (
    (lines & ModemLine.dcd ? ModemState.cd : 0) |
    (lines & ModemLine.ri ? ModemState.ri : 0) |
    (lines & ModemLine.dsr ? ModemState.dsr : 0) |
    (lines & ModemLine.cts ? ModemState.cts : 0)
  );
}

/** The delta bits between two modem states: CD, DSR and CTS changes, and RI's trailing edge. */
export function modemDeltas(before: number, now: number): number {
  const changed = before ^ now;
  return (
    (changed & ModemState.cd ? ModemState.deltaCd : 0) |
    (before & ModemState.ri && !(now & ModemState.ri) ? ModemState.trailingRi : 0) |
    (changed & ModemState.dsr ? ModemState.deltaDsr : 0) |
    (changed & ModemState.cts ? ModemState.deltaCts : 0)
  );
}
