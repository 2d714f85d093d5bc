/** CRC-16/MODBUS: polynomial 0xA001 (reflected 0x8005), initial 0xFFFF; a table, since it runs per frame. */
const TABLE = ((): Uint16Array => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** The CRC of bytes [start, end) of `bytes`. On the wire it follows the frame low byte first. */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ (TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number);
  return crc;
}
