import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  answerNumber,
  decodeBlock,
  encodeBlock,
  parseIdentity,
  parseScpiError,
  ScpiAnswerFramer,
  type ScpiFrame,
} from '../../../../agent/drivers/scpi-answer';
import { ProtocolError } from '../../../../src/errors';

const NL = Buffer.from('\n');

/** Feeds `stream` to a framer in pieces cut at `cuts` (offsets), as a line delivers it. */
function frame(stream: Buffer, cuts: number[], terminator = NL, maxBytes?: number): ScpiFrame[] {
  const framer = new ScpiAnswerFramer(terminator, maxBytes);
  const frames: ScpiFrame[] = [];
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < stream.length)].sort((a, b) => a - b).concat(stream.length)) {
    frames.push(...framer.push(stream.subarray(at, cut)));
    at = cut;
  }
  return frames;
}

function answers(frames: ScpiFrame[]): string[] {
  return frames.map((f) => (f.ok ? f.answer.toString('latin1') : `error: ${f.error.message}`));
}

/** An answer that is text (no terminator) or a block of any bytes, as an instrument sends it. */
const arbitraryAnswer = fc.oneof(
  fc.stringMatching(/^[ -~]*$/).map((s) => Buffer.from(s.replace(/#(?=\d)/g, '#H'), 'latin1')),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => encodeBlock(Buffer.from(bytes))),
);

describe('agent/drivers/scpi-answer', () => {
  describe('block codec', () => {
    it('decodes what it encodes, for any payload (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
          const payload = Buffer.from(bytes);
          const block = encodeBlock(payload);
          assert.equal(block.toString('latin1', 0, 2 + String(payload.length).length), `#${String(payload.length).length}${payload.length}`);
          assert.ok(decodeBlock(block).equals(payload));
        }),
      );
    });

    it('refuses a block whose length does not match its bytes (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.integer({ min: -5, max: 5 }), (bytes, delta) => {
          fc.pre(delta !== 0 && bytes.length + delta >= 0);
          const block = encodeBlock(Buffer.from(bytes));
          const changed = delta > 0 ? Buffer.concat([block, Buffer.alloc(delta)]) : block.subarray(0, block.length + delta);
          assert.throws(() => decodeBlock(changed), ProtocolError);
        }),
      );
    });

    it('refuses malformed headers and reads an indefinite-length block', () => {
      for (const bad of ['', '#', 'x#15hello', '#A5hello', '#3', '#31', '#2x5hello', '#15hell', '#15hello!']) {
        assert.throws(() => decodeBlock(Buffer.from(bad)), ProtocolError, JSON.stringify(bad));
      }
      assert.equal(decodeBlock(Buffer.from('#15hello')).toString(), 'hello');
      assert.equal(decodeBlock(Buffer.from('#0raw\nbytes')).toString(), 'raw\nbytes');
      assert.equal(decodeBlock(Buffer.from('#10')).length, 0);
    });
  });

  describe('ScpiAnswerFramer', () => {
    it('cuts the same answers however the stream is split (property)', () => {
      fc.assert(
        fc.property(
          fc.array(arbitraryAnswer, { maxLength: 8 }),
          fc.constantFrom('\n', '\r\n', '\r'),
          fc.array(fc.nat(4000)),
          (sent, terminatorText, cuts) => {
            const terminator = Buffer.from(terminatorText);
            // A text answer holding the terminator's bytes would be two answers: instruments do not send those.
            fc.pre(sent.every((a) => a[0] === 0x23 || !a.includes(terminator[0])));
            const stream = Buffer.concat(sent.flatMap((a) => [a, terminator]));
            const got = frame(stream, cuts, terminator);
            assert.deepEqual(answers(got), sent.map((a) => a.toString('latin1')));
          },
        ),
      );
    });

    it('does not take a # inside a string, or #H/#Q/#B data, for a block', () => {
      const got = frame(Buffer.from('-113,"Undefined header #3"\n#HFF,#B1\n"a ""#1"" b"\n'), [5, 20]);
      assert.deepEqual(answers(got), ['-113,"Undefined header #3"', '#HFF,#B1', '"a ""#1"" b"']);
    });

    it('ends an indefinite-length block at the terminator', () => {
      assert.deepEqual(answers(frame(Buffer.from('#0a"b#9\nnext\n'), [])), ['#0a"b#9', 'next']);
    });

    it('yields an error in place of an answer with a malformed block header, and stays in step', () => {
      const got = frame(Buffer.from('#3x2abc\n#4\nok\n'), [2]);
      assert.equal(got.length, 3);
      assert.ok(!got[0].ok && got[0].error instanceof ProtocolError && /length digit expected, got byte 0x78/.test(got[0].error.message));
      assert.ok(!got[1].ok && /got byte 0x0a/.test(got[1].error.message));
      assert.deepEqual(answers(got.slice(2)), ['ok']);
    });

    it('skips a block larger than its limit exactly, and a text answer that outgrows it', () => {
      const big = Buffer.concat([encodeBlock(Buffer.alloc(100, 0x0a)), NL, Buffer.alloc(150, 0x41), NL, Buffer.from('ok\n')]);
      const got = frame(big, [10, 60, 130], NL, 64);
      assert.equal(got.length, 3);
      assert.ok(!got[0].ok && /block of 100 bytes is larger than 64/.test(got[0].error.message));
      assert.ok(!got[1].ok && /longer than 64 bytes/.test(got[1].error.message));
      assert.deepEqual(answers(got.slice(2)), ['ok']);
    });

    it('forgets a partial answer on reset()', () => {
      const framer = new ScpiAnswerFramer(NL);
      assert.deepEqual(framer.push(Buffer.from('#15he')), []);
      framer.reset();
      assert.deepEqual(answers(framer.push(Buffer.from('next\n'))), ['next']);
      assert.throws(() => new ScpiAnswerFramer(Buffer.alloc(0)), ProtocolError);
    });
  });

  describe('answerNumber', () => {
    it('reads NR1, NR2, NR3 and #H/#Q/#B numbers', () => {
      const cases: Array<[string, number]> = [
        ['+3.300000E+00', 3.3],
        ['-12', -12],
        ['.5', 0.5],
        ['7.', 7],
        [' 1.5e-3 ', 0.0015],
        ['9.9E37', 9.9e37],
        ['#HFF', 255],
        ['#q17', 15],
        ['#B101', 5],
      ];
      for (const [text, n] of cases) assert.equal(answerNumber(Buffer.from(text)), n, text);
    });

    it('is NaN for anything else', () => {
      const others = ['', ' ', 'ON', '1,2', '0x10', 'Infinity', '1e', '#HFG', '#B102', '#15hello', '1.2.3', '--1', '+', '"1"', '1'.repeat(70)];
      for (const text of others) {
        assert.ok(Number.isNaN(answerNumber(Buffer.from(text))), text);
      }
    });
  });

  describe('parseScpiError', () => {
    it('reads code and message, with "" as a quote', () => {
      assert.deepEqual(parseScpiError(Buffer.from('-113,"Undefined header"')), { code: -113, message: 'Undefined header' });
      assert.deepEqual(parseScpiError(Buffer.from('+0,"No error"')), { code: 0, message: 'No error' });
      assert.deepEqual(parseScpiError(Buffer.from('-222, "Data out of range; ""VOLT"""')), { code: -222, message: 'Data out of range; "VOLT"' });
    });

    it('refuses what is not an error answer', () => {
      for (const bad of ['', '0', 'No error', '-113,Undefined header', '-113,"open', 'x,"y"', '-113,"a"b"', '1.5,"x"']) {
        assert.throws(() => parseScpiError(Buffer.from(bad)), ProtocolError, bad);
      }
    });
  });

  describe('parseIdentity', () => {
    it('reads the four *IDN? fields', () => {
      assert.deepEqual(parseIdentity(Buffer.from('Keysight Technologies,34465A,MY1234,A.02.14-02.40')), {
        manufacturer: 'Keysight Technologies',
        model: '34465A',
        serial: 'MY1234',
        firmware: 'A.02.14-02.40',
      });
    });

    it('refuses other field counts', () => {
      for (const bad of ['', 'ACME', 'ACME,DMM,1', 'A,B,C,D,E']) assert.throws(() => parseIdentity(Buffer.from(bad)), ProtocolError, bad);
    });
  });
});
