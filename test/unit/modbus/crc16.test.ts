import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { crc16 } from '../../../src/modbus/crc16';

/** The bitwise CRC-16/MODBUS of the standard's appendix, to compare the table with. */
function reference(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

describe('modbus: CRC-16', () => {
  it('is the check value of CRC-16/MODBUS and of a known frame', () => {
    assert.equal(crc16(Buffer.from('123456789', 'latin1')), 0x4b37);
    // Read 1 holding register at 0 of unit 1: 01 03 00 00 00 01 84 0A (CRC low byte first).
    assert.equal(crc16(Buffer.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x01])), 0x0a84);
  });

  it('equals the bitwise computation, over any range of any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
        assert.equal(crc16(bytes, start, end), reference(bytes.subarray(start, end)));
      }),
      { numRuns: 500 },
    );
  });
});
