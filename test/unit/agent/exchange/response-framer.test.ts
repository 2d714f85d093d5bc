import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { createResponseFramer, type ResponseRule } from '../../../../agent/exchange/response-framer';
import { ResourceExhaustedError, ValidationError } from '../../../../src/errors';
import { cut, cuts, frameChunks, type Framed, tokenStream } from './framing-helpers';

const BIG = 1 << 20;
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Reference framings, written the slow and obvious way. */
function byTerminator(stream: Buffer, terminator: Buffer): Framed {
  const responses: string[] = [];
  let from = 0;
  for (let at = stream.indexOf(terminator, from); at >= 0; at = stream.indexOf(terminator, from)) {
    responses.push(stream.subarray(from, at + terminator.length).toString('latin1'));
    from = at + terminator.length;
  }
  return { responses, pending: stream.length - from };
}

function byLengthPrefix(stream: Buffer, prefixBytes: 1 | 2 | 4): Framed {
  const responses: string[] = [];
  let from = 0;
  while (stream.length - from >= prefixBytes) {
    const total = prefixBytes + stream.readUIntBE(from, prefixBytes);
    if (stream.length - from < total) break;
    responses.push(stream.subarray(from, from + total).toString('latin1'));
    from += total;
  }
  return { responses, pending: stream.length - from };
}

/** The first prefix that matches, tried one byte at a time. */
function byPattern(stream: Buffer, source: string, flags: string): Framed {
  const re = new RegExp(source, flags.replace('g', ''));
  const text = stream.toString('latin1');
  const responses: string[] = [];
  let from = 0;
  outer: while (from < text.length) {
    for (let end = from + 1; end <= text.length; end++) {
      re.lastIndex = 0;
      if (re.test(text.slice(from, end))) {
        responses.push(text.slice(from, end));
        from = end;
        continue outer;
      }
    }
    break;
  }
  return { responses, pending: text.length - from };
}

describe('exchange: response framer', () => {
  it('terminator: completes at the end of the terminator and reports the bytes after it', () => {
    const framer = createResponseFramer({ kind: 'terminator', terminator: latin1('\r\n') }, BIG);
    assert.equal(framer.push(latin1('+CSQ: 2')), -1);
    assert.equal(framer.length, 7);
    assert.equal(framer.push(latin1('1,0\r\nOK')), 5);
    assert.equal(framer.take().toString('latin1'), '+CSQ: 21,0\r\n');
    assert.equal(framer.length, 0);
    assert.equal(framer.idleGapMs, undefined);
  });

  it('terminator: multi-byte and self-overlapping terminators split at every pair of positions', () => {
    const cases: Array<[string, string]> = [
      ['OK\r\n', 'ATI\r\nOK\r\n\r\nOK\r\nERROR\r\r\nOK\r\nx'],
      ['\r\n\r\n', 'x\r\n\r\n\r\ny\r\n\r\r\n\r\n\r\n\r'],
      ['aaa', 'baaaaaabaabaaaaa'],
    ];
    for (const [t, s] of cases) {
      const stream = latin1(s);
      const terminator = latin1(t);
      const expected = byTerminator(stream, terminator);
      for (let a = 0; a <= stream.length; a++) {
        for (let b = a; b <= stream.length; b++) {
          const framer = createResponseFramer({ kind: 'terminator', terminator }, BIG);
          assert.deepEqual(frameChunks(framer, cut(stream, [a, b])), expected, `${JSON.stringify(t)}: cut at ${a}, ${b}`);
        }
      }
    }
  });

  it('terminator: any stream cut anywhere frames exactly like the whole stream (property)', () => {
    const terminators = ['\n', '\r\n', 'OK\r\n', '\r\n\r\n', 'aab', 'aaa', '\x00\xff\x00'];
    fc.assert(
      fc.property(fc.constantFrom(...terminators), tokenStream(['\r', '\n', '\r\n', 'OK', 'a', 'aa', 'b', '\x00', '\xff']), cuts(), (t, s, at) => {
        const terminator = latin1(t);
        const framer = createResponseFramer({ kind: 'terminator', terminator }, BIG);
        assert.deepEqual(frameChunks(framer, cut(s, at)), byTerminator(s, terminator));
      }),
      { numRuns: 1500 },
    );
  });

  it('fixed length: any stream cut anywhere gives responses of exactly that length (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.uint8Array({ maxLength: 200 }), cuts(200), (length, bytes, at) => {
        const stream = Buffer.from(bytes);
        const framer = createResponseFramer({ kind: 'fixedLength', length }, BIG);
        const framed = frameChunks(framer, cut(stream, at));
        const whole = Math.floor(stream.length / length);
        assert.equal(framed.responses.length, whole);
        framed.responses.forEach((r, i) => assert.equal(r, stream.subarray(i * length, (i + 1) * length).toString('latin1')));
        assert.equal(framed.pending, stream.length - whole * length);
      }),
      { numRuns: 1000 },
    );
  });

  it('length prefix (1, 2, 4 bytes, big-endian): responses of any content cut anywhere (property)', () => {
    const message = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
    const tail6 = fc.uint8Array({ maxLength: 6 });
    fc.assert(
      fc.property(fc.constantFrom<1 | 2 | 4>(1, 2, 4), fc.array(message, { maxLength: 8 }), tail6, cuts(), (p, bodies, tail, at) => {
        const framesOf = bodies.map((body) => {
          const prefix = Buffer.alloc(p);
          prefix.writeUIntBE(body.length, 0, p);
          return Buffer.concat([prefix, body]);
        });
        const stream = Buffer.concat([...framesOf, Buffer.from(tail)]);
        const framer = createResponseFramer({ kind: 'lengthPrefix', prefixBytes: p }, 2 ** 33); // a random tail may announce up to 4 GiB
        const framed = frameChunks(framer, cut(stream, at));
        assert.deepEqual(framed, byLengthPrefix(stream, p));
        assert.ok(framed.responses.length >= bodies.length, 'every whole frame came out');
        framed.responses.slice(0, bodies.length).forEach((r, i) => assert.equal(r, (framesOf[i] as Buffer).toString('latin1')));
      }),
      { numRuns: 1000 },
    );
  });

  it('length prefix: a prefix split byte by byte, and a zero-length body', () => {
    const framer = createResponseFramer({ kind: 'lengthPrefix', prefixBytes: 4 }, BIG);
    for (const byte of [0, 0, 1, 0]) assert.equal(framer.push(Buffer.from([byte])), -1);
    assert.equal(framer.push(Buffer.alloc(255, 7)), -1);
    assert.equal(framer.push(Buffer.from([7, 9, 9])), 1);
    assert.equal(framer.take().length, 4 + 256);
    assert.equal(framer.push(Buffer.from([0, 0, 0, 0, 0x55])), 4);
    assert.deepEqual([...framer.take()], [0, 0, 0, 0]);
  });

  it('length prefix: refuses as soon as the prefix announces more than the limit', () => {
    const framer = createResponseFramer({ kind: 'lengthPrefix', prefixBytes: 2 }, 100);
    assert.equal(framer.push(Buffer.from([0])), -1);
    const tooLarge = (err: unknown): boolean => err instanceof ResourceExhaustedError && /limit of 100 bytes/.test(err.message);
    assert.throws(() => framer.push(Buffer.from([100])), tooLarge);
    assert.equal(framer.length, 0, 'the refused response is dropped');
    assert.equal(framer.push(Buffer.from([0, 98, ...Buffer.alloc(98)])), 100, 'exactly the limit fits');
  });

  const patterns: Array<[string, string]> = [
    ['OK\\r\\n', ''],
    ['OK\\r\\n$', ''],
    ['(OK|ERROR)\\r\\n$', ''],
    ['^\\+CME ERROR: \\d+\\r\\n', ''],
    ['ok\\r?\\n', 'i'],
    ['OK\\r\\n', 'g'],
    ['\\d{3}\\b', ''],
    ['a$|b', ''],
    ['x(?=y)', ''],
    ['(?<=a)b+a', ''],
    ['> $', 'm'],
    ['\\$', ''],
  ];

  it('pattern: the first prefix that matches ends the response, however the stream is cut (property)', () => {
    const tokens = ['OK', '\r\n', 'ERROR', '+CME ERROR: ', '12', '3', 'a', 'b', 'x', 'y', '> ', '\n', 'ok', '$'];
    fc.assert(
      fc.property(fc.constantFrom(...patterns), tokenStream(tokens), cuts(), ([source, flags], stream, at) => {
        const framer = createResponseFramer({ kind: 'pattern', pattern: new RegExp(source, flags) }, BIG);
        assert.deepEqual(frameChunks(framer, cut(stream, at)), byPattern(stream, source, flags), `/${source}/${flags}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('pattern: a response ending "OK\\r\\n" split at every position, and the same RegExp (with g) reused', () => {
    const pattern = /OK\r\n$/g;
    const stream = latin1('AT+CGMI\r\nQuectel\r\nOK\r\nAT\r\nOK\r\n+RING');
    for (let a = 0; a <= stream.length; a++) {
      const framer = createResponseFramer({ kind: 'pattern', pattern }, BIG);
      assert.deepEqual(frameChunks(framer, cut(stream, [a])), { responses: ['AT+CGMI\r\nQuectel\r\nOK\r\n', 'AT\r\nOK\r\n'], pending: 5 });
    }
  });

  it('idle gap: never completes by itself, says its gap, and take() returns everything', () => {
    const framer = createResponseFramer({ kind: 'idleGap', gapMs: 30 }, BIG);
    assert.equal(framer.idleGapMs, 30);
    assert.equal(framer.push(latin1('abc\n')), -1);
    assert.equal(framer.push(latin1('def')), -1);
    assert.equal(framer.length, 7);
    assert.equal(framer.take().toString('latin1'), 'abc\ndef');
    assert.equal(framer.length, 0);
  });

  it('every rule refuses a response over the limit with ResourceExhaustedError, and works again after', () => {
    const rules: ResponseRule[] = [
      { kind: 'terminator', terminator: latin1('\n') },
      { kind: 'fixedLength', length: 20 },
      { kind: 'pattern', pattern: /END/ },
      { kind: 'idleGap', gapMs: 10 },
    ];
    for (const rule of rules) {
      const framer = createResponseFramer(rule, 16);
      assert.equal(framer.push(Buffer.alloc(10, 0x41)), -1);
      assert.throws(() => framer.push(Buffer.alloc(7, 0x41)), ResourceExhaustedError, rule.kind);
      assert.equal(framer.length, 0, `${rule.kind}: dropped`);
      assert.equal(framer.push(Buffer.alloc(16, 0x41)), -1, `${rule.kind}: 16 bytes fit`);
      assert.throws(() => framer.push(Buffer.alloc(1, 0x41)), ResourceExhaustedError, `${rule.kind}: the 17th does not`);
    }
    const exact = createResponseFramer({ kind: 'terminator', terminator: latin1('\n') }, 16);
    assert.equal(exact.push(latin1('x'.repeat(15) + '\nrest')), 16, 'a response of exactly the limit completes');
  });

  it('copies what it takes: a chunk buffer reused by the caller does not change the response', () => {
    const framer = createResponseFramer({ kind: 'terminator', terminator: latin1('\n') }, BIG);
    const chunk = latin1('hello');
    framer.push(chunk);
    chunk.fill(0x5a);
    framer.push(latin1(' world\n'));
    assert.equal(framer.take().toString('latin1'), 'hello world\n');
  });

  it('grows its buffer for a long response and keeps every byte', () => {
    const framer = createResponseFramer({ kind: 'terminator', terminator: latin1('\n') }, BIG);
    const body = Buffer.from(Array.from({ length: 70_000 }, (_, i) => 32 + (i % 90)));
    for (let i = 0; i < body.length; i += 999) assert.equal(framer.push(body.subarray(i, i + 999)), -1);
    assert.equal(framer.push(latin1('\n')), 1);
    assert.deepEqual(framer.take(), Buffer.concat([body, latin1('\n')]));
  });

  it('refuses bad rules with ValidationError', () => {
    const bad: Array<[ResponseRule, number]> = [
      [{ kind: 'terminator', terminator: Buffer.alloc(0) }, BIG],
      [{ kind: 'fixedLength', length: 0 }, BIG],
      [{ kind: 'fixedLength', length: 1.5 }, BIG],
      [{ kind: 'lengthPrefix', prefixBytes: 3 as 1 }, BIG],
      [{ kind: 'idleGap', gapMs: 0 }, BIG],
      [{ kind: 'terminator', terminator: latin1('\n') }, 0],
    ];
    for (const [rule, max] of bad) assert.throws(() => createResponseFramer(rule, max), ValidationError, JSON.stringify(rule));
  });
});
