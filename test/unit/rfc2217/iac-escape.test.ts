import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { escapeIac } from '../../../src/rfc2217/iac-escape';
import { IAC } from '../../../src/rfc2217/telnet-codes';

/** The obvious byte-by-byte escaping, to compare with. */
function reference(data: Buffer): Buffer {
  return Buffer.from([...data].flatMap((b) => (b === IAC ? [IAC, IAC] : [b])));
}

describe('rfc2217: IAC escaping', () => {
  it('doubles every 0xFF and nothing else', () => {
    const withIacs = fc.array(fc.oneof(fc.constant(IAC), fc.integer({ min: 0, max: 255 })), { maxLength: 200 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(withIacs, (data) => assert.deepEqual(escapeIac(data), reference(data))),
      { numRuns: 1000 },
    );
  });

  it('returns data without 0xFF as it is, without a copy', () => {
    const data = Buffer.from('no escapes here');
    assert.equal(escapeIac(data), data);
    assert.deepEqual(escapeIac(Buffer.from([IAC])), Buffer.from([IAC, IAC]));
    assert.deepEqual(escapeIac(Buffer.alloc(0)), Buffer.alloc(0));
  });
});
