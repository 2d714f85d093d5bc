import { EXCEPTION_BIT } from './exception-codes';

/** Not yet known: more bytes are needed to tell. */
export const LENGTH_NEEDS_MORE = -1;
/** A function code whose response length the standard does not fix: the inter-frame gap ends it. */
export const LENGTH_BY_GAP = -2;

/** Responses of a fixed size, CRC included: unit, FC, 4 bytes of echo, CRC. */
const FIXED: Readonly<Record<number, number>> = {
  0x05: 8, // write single coil: address, value
  0x06: 8, // write single register
  0x07: 5, // read exception status: one byte
  0x08: 8, // diagnostics: sub-function, data (the common 2-byte form)
  0x0b: 8, // get comm event counter: status, count
  0x0f: 8, // write multiple coils: address, quantity
  0x10: 8, // write multiple registers
  0x16: 10, // mask write register: address, and-mask, or-mask
};

/** Responses with a byte count at offset 2: unit, FC, count, data, CRC. */
const BYTE_COUNT = new Set([0x01, 0x02, 0x03, 0x04, 0x0c, 0x11, 0x14, 0x15, 0x17]);

/**
 * The length of the RTU response frame that `frame` begins (its first `length` bytes), by the
 * function code: a fixed size, a byte count at offset 2 (FC 0x18: a 2-byte count at 2), 5 for an
 * exception; LENGTH_NEEDS_MORE before the bytes that tell, LENGTH_BY_GAP for other function codes.
 */
export function rtuResponseLength(frame: Buffer, length: number): number {
  if (length < 2) return LENGTH_NEEDS_MORE;
  const fc = frame[1] as number;
  if (fc & EXCEPTION_BIT) return 5;
  const fixed = FIXED[fc];
  if (fixed !== undefined) return fixed;
  if (BYTE_COUNT.has(fc)) return length < 3 ? LENGTH_NEEDS_MORE : 5 + (frame[2] as number);
  if (fc === 0x18) return length < 4 ? LENGTH_NEEDS_MORE : 6 + frame.readUInt16BE(2);
  return LENGTH_BY_GAP;
}
