/**
 * Socket-plane framing. After the client's 8-byte preface, both directions carry frames:
 *
 *   | length: u32 BE | type: u8 | session: u32 BE | payload: length bytes |
 *
 * Session 0 is the connection itself (GOAWAY). DATA payloads are raw bytes; the few control
 * payloads (OPEN, RESET, GOAWAY) are small JSON objects, never on the per-byte path. EVENT,
 * COMMAND and COMMAND_RESULT have small binary layouts of their own (device-event.ts,
 * device-command.ts): they can be as frequent as data.
 */

export const PREFACE: Buffer = Buffer.from('DMSP/1\r\n', 'latin1');
export const HEADER_SIZE = 9;
/** Largest payload a peer may send; anything larger is a protocol error, not a buffer to grow. */
export const MAX_PAYLOAD = 1 << 20;
/** DATA frames are cut at this size so one session cannot hog the connection. */
export const MAX_DATA_CHUNK = 64 * 1024;
/** Bytes a sender may have in flight per session before the receiver grants more. */
export const INITIAL_WINDOW = 256 * 1024;

export enum FrameType {
  /** client → server: open a session for a mapping. Payload: OpenRequest JSON. */
  Open = 1,
  /** server → client: the session is open. Empty payload. */
  OpenOk = 2,
  Data = 3,
  /** Grants the peer more send credit. Payload: u32 BE increment. */
  Window = 4,
  /** The sender will send no more on this session (half close). Empty payload. */
  Close = 5,
  /** Aborts a session, or refuses an OPEN. Payload: ErrorPayload JSON. */
  Reset = 6,
  /** Session 0: the connection is being closed, with the reason. Payload: ErrorPayload JSON. */
  GoAway = 7,
  /** server → client: something happened on the session's device. Payload: DeviceEvent. */
  Event = 8,
  /** client → server: a command for the session's device. Payload: CommandRequest. */
  Command = 9,
  /** server → client: the outcome of a command. Payload: CommandResult. */
  CommandResult = 10,
}

const KNOWN_TYPES = new Set<number>([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);

export function isFrameType(value: number): value is FrameType {
  return KNOWN_TYPES.has(value);
}

/** Writes a frame header; the payload follows as a separate buffer (no copy of data). */
export function encodeHeader(type: FrameType, session: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  header.writeUInt32BE(length, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32BE(session >>> 0, 5);
  return header;
}

/** A whole frame in one buffer, for control frames. */
export function encodeFrame(type: FrameType, session: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([encodeHeader(type, session, payload.length), payload]);
}

export function encodeWindow(session: number, increment: number): Buffer {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + 4);
  frame.writeUInt32BE(4, 0);
  frame.writeUInt8(FrameType.Window, 4);
  frame.writeUInt32BE(session >>> 0, 5);
  frame.writeUInt32BE(increment >>> 0, HEADER_SIZE);
  return frame;
}
