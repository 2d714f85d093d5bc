import * as fs from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { DeviceMeshError } from '../src/errors';

/**
 * The framing of the control plane's write-ahead log: a file of records, each
 *
 *   | magic 0xFF "DML" | payload length u32 BE | CRC-32 of the payload u32 BE | payload |
 *
 * appended whole and made durable (fdatasync) before the next one is started. A crash can
 * therefore only tear the last record: damage followed by a sound record is corruption.
 * The magic starts with 0xFF, a byte UTF-8 never contains, so it never occurs in a JSON payload.
 */

const MAGIC = Buffer.from([0xff, 0x44, 0x4d, 0x4c]);
const HEADER_BYTES = 12;
/** Far above any real batch; a larger length can only be a damaged header. */
const MAX_PAYLOAD_BYTES = 1 << 30;

function encodeRecord(payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(payload.length, 4);
  header.writeUInt32BE(crc32(payload), 8);
  return Buffer.concat([header, payload]);
}

export interface LogRecord {
  /** Byte offset of the record in the file, for error messages. */
  offset: number;
  payload: Buffer;
}

export interface LogContents {
  records: LogRecord[];
  /** Bytes of a torn last record, not part of `records`. */
  tornBytes: number;
}

/** Splits a log into its records; a torn tail is left out, damage in the middle throws. */
export function decodeRecords(log: Buffer): LogContents {
  const records: LogRecord[] = [];
  let offset = 0;
  while (offset < log.length) {
    const payload = payloadAt(log, offset);
    if (!payload) {
      if (soundRecordAfter(log, offset)) {
        throw new DeviceMeshError('INTERNAL', `the record at byte ${offset} is damaged and sound records follow it`);
      }
      return { records, tornBytes: log.length - offset };
    }
    records.push({ offset, payload });
    offset += HEADER_BYTES + payload.length;
  }
  return { records, tornBytes: 0 };
}

function payloadAt(log: Buffer, offset: number): Buffer | undefined {
  if (offset + HEADER_BYTES > log.length || !log.subarray(offset, offset + MAGIC.length).equals(MAGIC)) return undefined;
  const length = log.readUInt32BE(offset + 4);
  const start = offset + HEADER_BYTES;
  if (length > MAX_PAYLOAD_BYTES || start + length > log.length) return undefined;
  const payload = log.subarray(start, start + length);
  return crc32(payload) === log.readUInt32BE(offset + 8) ? payload : undefined;
}

function soundRecordAfter(log: Buffer, damaged: number): boolean {
  for (let at = log.indexOf(MAGIC, damaged + 1); at >= 0; at = log.indexOf(MAGIC, at + 1)) {
    if (payloadAt(log, at)) return true;
  }
  return false;
}

/** Appends one record and waits until it is on disk; returns the bytes written. */
export async function appendRecord(file: string, payload: Buffer): Promise<number> {
  const record = encodeRecord(payload);
  const fh = await fs.open(file, 'a', 0o600);
  try {
    await fh.writeFile(record);
    // fdatasync covers the new file length, which is all an append changes besides the data.
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return record.length;
}
