import { ProtocolError } from '../errors';

/** An EBML element's header: its ID (marker bits kept, as the Matroska spec writes IDs), payload size, and the header's own length. */
export interface EbmlElementHeader {
  id: number;
  /** Payload bytes; null for the "unknown size" (all value bits set) a live muxer may write. */
  size: number | null;
  headerLength: number;
}

/** An ID takes 1–4 bytes and a size 1–8: a header is at most 12. */
export const EBML_HEADER_MAX = 12;

/** Length of the variable-length integer whose first byte is `first` (leading zeros + 1); 0 when there is no marker bit in 8. */
function varintLength(first: number): number {
  return first === 0 ? 0 : Math.clz32(first) - 23;
}

/**
 * Reads an element header from `bytes` (a prefix of the stream from an element boundary);
 * null when more bytes are needed. Throws a ProtocolError for bytes no EBML header can start with.
 */
export function readElementHeader(bytes: Uint8Array, length: number): EbmlElementHeader | null {
  if (length < 1) return null;
  const idLength = varintLength(bytes[0] as number);
  if (idLength === 0 || idLength > 4) throw new ProtocolError(`EBML: 0x${(bytes[0] as number).toString(16)} cannot start an element ID`);
  if (length < idLength + 1) return null;
  let id = 0;
  for (let i = 0; i < idLength; i++) id = id * 256 + (bytes[i] as number);
  const sizeFirst = bytes[idLength] as number;
  const sizeLength = varintLength(sizeFirst);
  if (sizeLength === 0) throw new ProtocolError(`EBML: element 0x${id.toString(16)} has a size longer than 8 bytes`);
  if (length < idLength + sizeLength) return null;
  const mask = 0xff >> sizeLength;
  let size = sizeFirst & mask;
  let unknown = size === mask;
  for (let i = 1; i < sizeLength; i++) {
    const b = bytes[idLength + i] as number;
    unknown &&= b === 0xff;
    size = size * 256 + b;
  }
  return { id, size: unknown ? null : size, headerLength: idLength + sizeLength };
}

/** Writes `id` and a `size` (null: unknown) as an element header; for tests and tools that build streams. */
export function writeElementHeader(id: number, size: number | null): Buffer {
  const idBytes: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) idBytes.unshift(v % 256);
  if (size === null) return Buffer.from([...idBytes, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  let sizeLength = 1;
  while (sizeLength < 8 && size >= 2 ** (7 * sizeLength) - 1) sizeLength++;
  const sizeBytes: number[] = [];
  for (let i = 0, v = size; i < sizeLength; i++, v = Math.floor(v / 256)) sizeBytes.unshift(v % 256);
  sizeBytes[0] = (sizeBytes[0] as number) | (0x80 >> (sizeLength - 1));
  return Buffer.from([...idBytes, ...sizeBytes]);
}
