import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { RequestSplitter } from '../../../../agent/exchange/request-splitter';
import { ResourceExhaustedError, ValidationError } from '../../../../src/errors';
import { cut, cuts, tokenStream } from './framing-helpers';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Every command of a chunk sequence, and the unfinished rest. */
function splitAll(splitter: RequestSplitter, chunks: readonly Buffer[]): { commands: string[]; pending: number } {
  const commands: string[] = [];
  for (const chunk of chunks) for (const command of splitter.push(chunk)) commands.push(command.toString('latin1'));
  return { commands, pending: splitter.pending };
}

describe('exchange: request splitter', () => {
  it('cuts several commands out of one chunk and keeps the unfinished rest', () => {
    const splitter = new RequestSplitter(latin1('\r'), 1024);
    assert.deepEqual(splitter.push(latin1('AT\rATI\rAT+C')).map((b) => b.toString('latin1')), ['AT\r', 'ATI\r']);
    assert.equal(splitter.pending, 4);
    assert.deepEqual(splitter.push(latin1('SQ')), []);
    assert.deepEqual(splitter.push(latin1('\r')).map((b) => b.toString('latin1')), ['AT+CSQ\r']);
    assert.equal(splitter.pending, 0);
  });

  it('finds a terminator split across chunks at every position', () => {
    const stream = latin1('GET a\r\nGET bb\r\n\r\nX\r');
    for (let a = 0; a <= stream.length; a++) {
      for (let b = a; b <= stream.length; b++) {
        const splitter = new RequestSplitter(latin1('\r\n'), 1024);
        const expected = { commands: ['GET a\r\n', 'GET bb\r\n', '\r\n'], pending: 2 };
        assert.deepEqual(splitAll(splitter, cut(stream, [a, b])), expected, `cut at ${a}, ${b}`);
      }
    }
  });

  it('gives the same commands however the stream is cut (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom('\n', '\r\n', ';;', '\x03'), tokenStream(['\r', '\n', ';', 'AT', '\x03']), cuts(), (t, stream, at) => {
        const terminator = latin1(t);
        const expected: string[] = [];
        let from = 0;
        for (let i = stream.indexOf(terminator); i >= 0; i = stream.indexOf(terminator, from)) {
          expected.push(stream.subarray(from, i + terminator.length).toString('latin1'));
          from = i + terminator.length;
        }
        const splitter = new RequestSplitter(terminator, 1 << 20);
        assert.deepEqual(splitAll(splitter, cut(stream, at)), { commands: expected, pending: stream.length - from });
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses an unfinished command past the limit with ResourceExhaustedError, then splits again', () => {
    const splitter = new RequestSplitter(latin1('\n'), 8);
    assert.deepEqual(splitter.push(latin1('12345')), []);
    assert.throws(
      () => splitter.push(latin1('6789')),
      (err: unknown) => err instanceof ResourceExhaustedError && err.message === 'a command exceeds the limit of 8 bytes without a terminator',
    );
    assert.equal(splitter.pending, 0);
    assert.deepEqual(splitter.push(latin1('1234567\nab')).map((b) => b.toString('latin1')), ['1234567\n'], 'exactly 8 bytes is a command');
  });

  it('refuses an empty terminator or a bad limit with ValidationError', () => {
    assert.throws(() => new RequestSplitter(Buffer.alloc(0), 10), ValidationError);
    assert.throws(() => new RequestSplitter(latin1('\n'), 0), ValidationError);
  });
});
