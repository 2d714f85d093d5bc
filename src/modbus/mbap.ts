import { ProtocolError } from '../errors';
import { EXCEPTION_BIT, type ModbusExceptionCode } from './exception-codes';

/** Transaction id (2), protocol id (2), length (2), unit id (1). */
export const MBAP_HEADER_BYTES = 7;
/** A PDU is the function code and at most 252 data bytes (so an RTU frame fits 256 bytes). */
export const MAX_PDU_BYTES = 253;

/** The MBAP fields of a whole ADU (header and PDU). */
export interface MbapHeader {
  transactionId: number;
  unitId: number;
  functionCode: number;
}

/** Reads the header of an ADU that mbapLength() accepted. */
export function readMbap(adu: Buffer): MbapHeader {
  return { transactionId: adu.readUInt16BE(0), unitId: adu[6] as number, functionCode: adu[7] as number };
}

/**
 * The length of the ADU that starts `bytes` once its header is there (undefined before). Throws
 * ProtocolError for a protocol id other than 0 (not Modbus) or a length field outside 2..254
 * (a unit id and a PDU of 1..253 bytes): a stream that is not MBAP has no frame boundary left to trust.
 */
export function mbapLength(bytes: Buffer, start = 0): number | undefined {
  if (bytes.length - start < MBAP_HEADER_BYTES) return undefined;
  const protocolId = bytes.readUInt16BE(start + 2);
  if (protocolId !== 0) throw new ProtocolError(`MBAP protocol id ${protocolId} is not 0 (Modbus)`);
  const length = bytes.readUInt16BE(start + 4);
  if (length < 2 || length > MAX_PDU_BYTES + 1) {
    throw new ProtocolError(`MBAP length ${length} is outside 2..${MAX_PDU_BYTES + 1} (a unit id and a PDU of 1..${MAX_PDU_BYTES} bytes)`);
  }
  return MBAP_HEADER_BYTES - 1 + length;
}

/** An ADU: the transaction and unit id and `pdu` (bytes [start, end) of it). */
export function encodeMbap(transactionId: number, unitId: number, pdu: Buffer, start = 0, end = pdu.length): Buffer {
  const n = end - start;
  const adu = Buffer.allocUnsafe(MBAP_HEADER_BYTES + n);
  adu.writeUInt16BE(transactionId & 0xffff, 0);
  adu.writeUInt16BE(0, 2);
  adu.writeUInt16BE(n + 1, 4);
  adu[6] = unitId & 0xff;
  pdu.copy(adu, MBAP_HEADER_BYTES, start, end);
  return adu;
}

/** The exception response to a request: its function code with the exception bit, and the code. */
export function mbapException(request: MbapHeader, code: ModbusExceptionCode): Buffer {
  const adu = Buffer.allocUnsafe(MBAP_HEADER_BYTES + 2);
  adu.writeUInt16BE(request.transactionId & 0xffff, 0);
  adu.writeUInt16BE(0, 2);
  adu.writeUInt16BE(3, 4);
  adu[6] = request.unitId & 0xff;
  adu[7] = (request.functionCode | EXCEPTION_BIT) & 0xff;
  adu[8] = code;
  return adu;
}
