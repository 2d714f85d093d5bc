import { ProtocolError } from '../errors';
import { crc16 } from './crc16';
import { MAX_PDU_BYTES } from './mbap';

/** Unit id, function code, CRC (2): the shortest RTU frame. */
export const MIN_RTU_FRAME_BYTES = 4;

/** The RTU frame of a PDU (bytes [start, end) of `pdu`) to `unitId`: unit, PDU, CRC low byte first. */
export function encodeRtu(unitId: number, pdu: Buffer, start = 0, end = pdu.length): Buffer {
  const n = end - start;
  const frame = Buffer.allocUnsafe(n + 3);
  frame[0] = unitId & 0xff;
  pdu.copy(frame, 1, start, end);
  frame.writeUInt16LE(crc16(frame, 0, n + 1), n + 1);
  return frame;
}

/**
 * Throws ProtocolError unless `frame` is a whole RTU frame: 4..256 bytes whose last two are the CRC
 * of the rest. Its PDU is bytes [1, length - 2).
 */
export function checkRtu(frame: Buffer): void {
  if (frame.length < MIN_RTU_FRAME_BYTES) throw new ProtocolError(`an RTU frame of ${frame.length} bytes is shorter than ${MIN_RTU_FRAME_BYTES}`);
  if (frame.length > MAX_PDU_BYTES + 3) throw new ProtocolError(`an RTU frame of ${frame.length} bytes is longer than ${MAX_PDU_BYTES + 3}`);
  const end = frame.length - 2;
  const expected = crc16(frame, 0, end);
  const got = frame.readUInt16LE(end);
  if (got !== expected) throw new ProtocolError(`RTU CRC 0x${hex(got)} is not 0x${hex(expected)}`);
}

function hex(n: number): string {
  return n.toString(16).padStart(4, '0');
}
