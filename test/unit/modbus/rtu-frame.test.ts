import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import { MAX_PDU_BYTES } from '../../../src/modbus/mbap';
import { checkRtu, encodeRtu } from '../../../src/modbus/rtu-frame';
import { LENGTH_BY_GAP, LENGTH_NEEDS_MORE, rtuResponseLength } from '../../../src/modbus/rtu-response-length';

const pdu = fc.uint8Array({ minLength: 1, maxLength: MAX_PDU_BYTES }).map((a) => Buffer.from(a));

describe('modbus: RTU frame', () => {
  it('encodes the known frame of a read', () => {
    assert.deepEqual([...encodeRtu(1, Buffer.from([3, 0, 0, 0, 1]))], [1, 3, 0, 0, 0, 1, 0x84, 0x0a]);
  });

  it('round-trips any unit and PDU, and any flipped bit fails the CRC (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), pdu, fc.nat(), fc.integer({ min: 0, max: 7 }), (unit, p, at, bit) => {
        const frame = encodeRtu(unit, p);
        checkRtu(frame);
        assert.equal(frame[0], unit);
        assert.deepEqual(frame.subarray(1, frame.length - 2), p);
        const corrupted = Buffer.from(frame);
        corrupted[at % corrupted.length] ^= 1 << bit;
        assert.throws(() => checkRtu(corrupted), ProtocolError);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses frames too short or too long', () => {
    assert.throws(() => checkRtu(Buffer.from([1, 3, 0])), /shorter than 4/);
    assert.throws(() => checkRtu(Buffer.alloc(257)), /longer than 256/);
  });

  it('tells a response length by function code', () => {
    const len = (bytes: number[]): number => rtuResponseLength(Buffer.from(bytes), bytes.length);
    assert.equal(len([1]), LENGTH_NEEDS_MORE);
    assert.equal(len([1, 3]), LENGTH_NEEDS_MORE);
    assert.equal(len([1, 3, 4]), 9); // two registers
    assert.equal(len([1, 1, 1]), 6);
    assert.equal(len([1, 6]), 8);
    assert.equal(len([1, 0x10]), 8);
    assert.equal(len([1, 0x83]), 5); // exception
    assert.equal(len([1, 0x16]), 10);
    assert.equal(len([1, 0x18, 0]), LENGTH_NEEDS_MORE);
    assert.equal(len([1, 0x18, 0, 6]), 12);
    assert.equal(len([1, 0x2b]), LENGTH_BY_GAP);
  });

  it('gives the length of any encoded read response, from its first bytes on (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.uint8Array({ maxLength: 250 }), (fcode, data) => {
        const frame = encodeRtu(1, Buffer.from([fcode, data.length, ...data]));
        for (let k = 3; k <= frame.length; k++) assert.equal(rtuResponseLength(frame, k), frame.length);
      }),
    );
  });
});
