import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import { decodeError, decodeOpen, encodeError, encodeOpen } from '../../../src/socket-plane/control-messages';

describe('socket plane: control messages', () => {
  it('round-trips OPEN and error payloads', () => {
    assert.deepEqual(decodeOpen(encodeOpen({ mappingId: 'app1-modem-1a2b3c4d', workloadId: 'app1' })), {
      mappingId: 'app1-modem-1a2b3c4d',
      workloadId: 'app1',
    });
    assert.deepEqual(decodeError(encodeError({ code: 'NOT_FOUND', message: 'no such mapping' })), {
      code: 'NOT_FOUND',
      message: 'no such mapping',
    });
  });

  it('rejects a malformed OPEN with ProtocolError', () => {
    const bad = ['', '{', 'null', '[]', '"x"', '42', '{}', '{"mappingId":"m"}', '{"mappingId":"","workloadId":"w"}',
      '{"mappingId":1,"workloadId":"w"}', JSON.stringify({ mappingId: 'x'.repeat(257), workloadId: 'w' }), '\xff\xfe'];
    for (const text of bad) {
      assert.throws(() => decodeOpen(Buffer.from(text, 'latin1')), ProtocolError, `accepted ${JSON.stringify(text)}`);
    }
  });

  it('never throws anything but ProtocolError on arbitrary OPEN bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), fc.json().map((j) => Buffer.from(j))), (payload) => {
        try {
          const req = decodeOpen(payload);
          assert.equal(typeof req.mappingId, 'string');
          assert.equal(typeof req.workloadId, 'string');
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('carries an optional W3C traceparent in OPEN, and rejects a malformed one', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    assert.deepEqual(decodeOpen(encodeOpen({ mappingId: 'm', workloadId: 'w', traceparent })), { mappingId: 'm', workloadId: 'w', traceparent });
    assert.equal(encodeOpen({ mappingId: 'm', workloadId: 'w' }).toString(), '{"mappingId":"m","workloadId":"w"}', 'no field when untraced');
    for (const bad of [7, '', 'x', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', `${traceparent}-00`]) {
      assert.throws(() => decodeOpen(Buffer.from(JSON.stringify({ mappingId: 'm', workloadId: 'w', traceparent: bad }))), ProtocolError, String(bad));
    }
    const hex = (n: number): fc.Arbitrary<string> => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
    fc.assert(
      fc.property(hex(2), hex(32), hex(16), hex(2), (v, t, p, f) => {
        const tp = `${v}-${t}-${p}-${f}`;
        assert.equal(decodeOpen(encodeOpen({ mappingId: 'm', workloadId: 'w', traceparent: tp })).traceparent, tp);
      }),
      { numRuns: 200 },
    );
  });

  it('reports an oddly shaped error payload instead of throwing', () => {
    assert.deepEqual(decodeError(Buffer.from('not json')), { code: 'PROTOCOL_ERROR', message: 'unreadable error payload (8 bytes)' });
    assert.deepEqual(decodeError(Buffer.from('{"code":7}')), { code: 'PROTOCOL_ERROR', message: 'no reason given' });
  });
});
