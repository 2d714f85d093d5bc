import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import { ModbusException } from '../../../src/modbus/exception-codes';
import { encodeMbap, MAX_PDU_BYTES, mbapException, mbapLength, readMbap } from '../../../src/modbus/mbap';
import { MbapSplitter } from '../../../src/modbus/mbap-splitter';

const pdu = fc.uint8Array({ minLength: 1, maxLength: MAX_PDU_BYTES }).map((a) => Buffer.from(a));
const adu = fc.record({ tid: fc.integer({ min: 0, max: 0xffff }), unit: fc.integer({ min: 0, max: 255 }), pdu }).map((r) => encodeMbap(r.tid, r.unit, r.pdu));

/** Cuts bytes into pieces at the given points. */
function pieces(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  out.push(bytes.subarray(from));
  return out;
}

describe('modbus: MBAP', () => {
  it('encodes and reads back transaction id, unit, function code and length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 255 }), pdu, (tid, unit, p) => {
        const a = encodeMbap(tid, unit, p);
        assert.deepEqual(readMbap(a), { transactionId: tid, unitId: unit, functionCode: p[0] });
        assert.equal(mbapLength(a), a.length);
        assert.deepEqual(a.subarray(7), p);
      }),
    );
  });

  it('splits any stream of ADUs, cut anywhere, into exactly those ADUs', () => {
    fc.assert(
      fc.property(fc.array(adu, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (adus, cuts) => {
        const splitter = new MbapSplitter();
        const got: Buffer[] = [];
        for (const piece of pieces(Buffer.concat(adus), cuts)) got.push(...splitter.push(piece));
        assert.deepEqual(got, adus);
        assert.equal(splitter.pending, 0);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a protocol id other than 0 and lengths outside 2..254 with a ProtocolError', () => {
    const bad = (bytes: number[]): void => assert.throws(() => new MbapSplitter().push(Buffer.from(bytes)), ProtocolError);
    bad([0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1]); // protocol id 1
    bad([0, 1, 0, 0, 0, 1, 1]); // length 1: no PDU
    bad([0, 1, 0, 0, 0, 0, 1]); // length 0
    bad([0, 1, 0, 0, 0, 255, 1]); // length 255: PDU of 254
    bad([0, 1, 0, 0, 0xff, 0xff, 1]);
    // Garbage (an HTTP request) fails at once, not after buffering.
    assert.throws(() => new MbapSplitter().push(Buffer.from('GET / HTTP/1.1\r\n')), /protocol id/);
  });

  it('any 7-byte header either gives its length or throws a ProtocolError (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 7, maxLength: 7 }), (h) => {
        const bytes = Buffer.from(h);
        try {
          const n = mbapLength(bytes);
          assert.ok(n !== undefined && n >= 8 && n <= 260);
        } catch (err) {
          assert.ok(err instanceof ProtocolError);
        }
      }),
    );
  });

  it('holds an unfinished ADU and a header split anywhere', () => {
    const splitter = new MbapSplitter();
    const a = encodeMbap(7, 1, Buffer.from([3, 0, 0, 0, 1]));
    assert.deepEqual(splitter.push(a.subarray(0, 3)), []);
    assert.deepEqual(splitter.push(a.subarray(3, 9)), []);
    assert.equal(splitter.pending, 9);
    assert.deepEqual(splitter.push(a.subarray(9)), [a]);
  });

  it('makes an exception response under the request transaction id and unit', () => {
    const e = mbapException({ transactionId: 0x1234, unitId: 3, functionCode: 6 }, ModbusException.IllegalFunction);
    assert.deepEqual([...e], [0x12, 0x34, 0, 0, 0, 3, 3, 0x86, 0x01]);
  });
});
