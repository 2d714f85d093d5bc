import { strict as assert } from 'node:assert';
import { readyPattern, requestTerminator, responseRule } from '../../../../agent/exchange/framing-from-policy';
import type { ResponseRule } from '../../../../agent/exchange/response-framer';
import { ValidationError } from '../../../../src/errors';
import type { ResponseFraming, ResponseFramingKind } from '../../../../src/proto/types';

function framing(kind: ResponseFramingKind, fields: Partial<ResponseFraming> = {}): ResponseFraming {
  return { kind, terminator: '', length: 0, pattern: '', idleGapMs: 0, ...fields };
}

function invalid(field: string, reason: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof ValidationError && err.field === field && reason.test(err.message);
}

const rule = (kind: ResponseFramingKind, fields: Partial<ResponseFraming> = {}): ResponseRule => responseRule(framing(kind, fields));
const LINE: ResponseRule = { kind: 'terminator', terminator: Buffer.from('\n') };

describe('exchange: framing from policy', () => {
  it('no framing, or UNSPECIFIED, is a line ending in "\\n"', () => {
    assert.deepEqual(responseRule(null), LINE);
    assert.deepEqual(rule('RESPONSE_FRAMING_UNSPECIFIED'), LINE);
  });

  it('maps every framing kind to its rule', () => {
    assert.deepEqual(rule('RESPONSE_FRAMING_TERMINATOR', { terminator: 'OK\r\n' }), { kind: 'terminator', terminator: Buffer.from('OK\r\n') });
    assert.deepEqual(rule('RESPONSE_FRAMING_TERMINATOR', { terminator: '\x03\xff' }), { kind: 'terminator', terminator: Buffer.from([3, 0xff]) });
    assert.deepEqual(rule('RESPONSE_FRAMING_FIXED_LENGTH', { length: 12 }), { kind: 'fixedLength', length: 12 });
    for (const n of [1, 2, 4]) assert.deepEqual(rule('RESPONSE_FRAMING_LENGTH_PREFIX', { length: n }), { kind: 'lengthPrefix', prefixBytes: n });
    const pattern = rule('RESPONSE_FRAMING_PATTERN', { pattern: '(OK|ERROR)\\r\\n$' });
    assert.ok(pattern.kind === 'pattern' && pattern.pattern.test('ERROR\r\n') && !pattern.pattern.test('OK\r'));
    assert.deepEqual(rule('RESPONSE_FRAMING_IDLE_GAP', { idleGapMs: 50 }), { kind: 'idleGap', gapMs: 50 });
  });

  it('refuses bad rules with ValidationError naming the field', () => {
    const badRegex = invalid('policy.response.pattern', /not a regular expression/);
    assert.throws(() => rule('RESPONSE_FRAMING_PATTERN', { pattern: '(OK' }), badRegex);
    assert.throws(() => rule('RESPONSE_FRAMING_PATTERN', { pattern: 'x*' }), invalid('policy.response.pattern', /matches no bytes/));
    assert.throws(() => rule('RESPONSE_FRAMING_PATTERN'), invalid('policy.response.pattern', /empty/));
    assert.throws(() => rule('RESPONSE_FRAMING_FIXED_LENGTH', { length: 0 }), invalid('policy.response.length', /not a positive/));
    assert.throws(() => rule('RESPONSE_FRAMING_LENGTH_PREFIX', { length: 3 }), invalid('policy.response.length', /1, 2 or 4 bytes, not 3/));
    assert.throws(() => rule('RESPONSE_FRAMING_TERMINATOR'), invalid('policy.response.terminator', /empty/));
    const notByte = invalid('policy.response.terminator', /U\+2028\) is not a byte/);
    assert.throws(() => rule('RESPONSE_FRAMING_TERMINATOR', { terminator: 'OK\u2028' }), notByte);
    assert.throws(() => rule('RESPONSE_FRAMING_IDLE_GAP'), invalid('policy.response.idleGapMs', /not a positive/));
    assert.throws(() => rule('RESPONSE_FRAMING_BOGUS' as ResponseFramingKind), invalid('policy.response.kind', /BOGUS/));
  });

  it('request terminator (empty is "\\n") and ready pattern (empty is none)', () => {
    assert.deepEqual(requestTerminator(''), Buffer.from('\n'));
    assert.deepEqual(requestTerminator('\r'), Buffer.from('\r'));
    assert.throws(() => requestTerminator('\u20ac'), invalid('policy.requestTerminator', /not a byte/));
    assert.equal(readyPattern(''), undefined);
    assert.ok(readyPattern('^> $')?.test('> '));
    assert.throws(() => readyPattern('['), invalid('policy.readyPattern', /not a regular expression/));
  });
});
