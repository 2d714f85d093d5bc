import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import {
  type ControlRequest,
  encodeControlRequest,
  lineWords,
  MAX_BREAK_MS,
  MAX_CONTROL_LINE,
  parseControlRequest,
  settingWord,
} from '../../../src/pty/line-control';
import { ModemLine } from '../../../src/socket-plane/device-event';

const request: fc.Arbitrary<ControlRequest> = fc.oneof(
  fc.record({ verb: fc.constant('break' as const), ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: MAX_BREAK_MS })) }),
  fc.record({ verb: fc.constantFrom('dtr' as const, 'rts' as const), on: fc.boolean() }),
  fc.constant({ verb: 'lines' as const }),
  fc.record({ verb: fc.constant('set' as const), setting: fc.constant('baudRate' as const), value: fc.integer({ min: 50, max: 4_000_000 }) }),
  fc.record({ verb: fc.constant('set' as const), setting: fc.constant('dataBits' as const), value: fc.integer({ min: 5, max: 8 }) }),
  fc.record({ verb: fc.constant('set' as const), setting: fc.constant('parity' as const), value: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ verb: fc.constant('set' as const), setting: fc.constant('stopBits' as const), value: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ verb: fc.constant('set' as const), setting: fc.constant('flowControl' as const), value: fc.integer({ min: 1, max: 3 }) }),
);

function refuses(line: string, message: RegExp): void {
  assert.throws(() => parseControlRequest(line), (e: unknown) => e instanceof ProtocolError && message.test(e.message), JSON.stringify(line));
}

describe('pty: control channel requests', () => {
  it('parses each verb, with the words of RFC 2217’s numbers', () => {
    assert.deepEqual(parseControlRequest('break'), { verb: 'break', ms: 0 });
    assert.deepEqual(parseControlRequest('break 250'), { verb: 'break', ms: 250 });
    assert.deepEqual(parseControlRequest('dtr 0'), { verb: 'dtr', on: false });
    assert.deepEqual(parseControlRequest('rts 1'), { verb: 'rts', on: true });
    assert.deepEqual(parseControlRequest('lines'), { verb: 'lines' });
    assert.deepEqual(parseControlRequest('baudRate 57600'), { verb: 'set', setting: 'baudRate', value: 57600 });
    assert.deepEqual(parseControlRequest('dataBits 7'), { verb: 'set', setting: 'dataBits', value: 7 });
    assert.deepEqual(parseControlRequest('parity even'), { verb: 'set', setting: 'parity', value: 3 });
    assert.deepEqual(parseControlRequest('parity space'), { verb: 'set', setting: 'parity', value: 5 });
    assert.deepEqual(parseControlRequest('stopBits 1.5'), { verb: 'set', setting: 'stopBits', value: 3 });
    assert.deepEqual(parseControlRequest('flowControl rtscts'), { verb: 'set', setting: 'flowControl', value: 3 });
  });

  it('takes a trailing CR and surrounding blanks (a terminal’s CRLF)', () => {
    assert.deepEqual(parseControlRequest('dtr 1\r'), { verb: 'dtr', on: true });
    assert.deepEqual(parseControlRequest('  parity\todd  '), { verb: 'set', setting: 'parity', value: 2 });
  });

  it('refuses malformed lines with a ProtocolError naming what is wrong', () => {
    refuses('', /unknown request ""/);
    refuses('reboot', /unknown request "reboot" \(break, dtr, rts, lines, baudRate/);
    refuses('BREAK', /unknown request "BREAK"/);
    refuses('constructor', /unknown request "constructor"/);
    refuses('break 0', /break 0 is out of range \(1 to 10000\)/);
    refuses(`break ${MAX_BREAK_MS + 1}`, /out of range/);
    refuses('break -5', /break needs an integer, not "-5"/);
    refuses('break 1e3', /needs an integer/);
    refuses('break 99999999999', /needs an integer/);
    refuses('dtr', /dtr needs 0 or 1, not ""/);
    refuses('rts on', /rts needs 0 or 1, not "on"/);
    refuses('dtr 1 2', /takes at most one argument/);
    refuses('lines now', /lines takes no argument/);
    refuses('baudRate', /baudRate needs an integer/);
    refuses('baudRate 49', /out of range \(50 to 4000000\)/);
    refuses('baudRate 9600.5', /needs an integer/);
    refuses('dataBits 9', /out of range \(5 to 8\)/);
    refuses('parity purple', /parity is one of none, odd, even, mark, space, not "purple"/);
    refuses('parity', /parity is one of/);
    refuses('parity toString', /parity is one of/);
    refuses('stopBits 3', /stopBits is one of 1, 2, 1.5, not "3"/);
    refuses('flowControl dsrdtr', /flowControl is one of none, xonxoff, rtscts/);
    refuses('x'.repeat(MAX_CONTROL_LINE + 1), /control line of 129 characters \(at most 128\)/);
  });

  it('never throws anything but a ProtocolError on any line (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.stringMatching(/^(break|dtr|rts|lines|baudRate|dataBits|parity|stopBits|flowControl)( [-0-9a-z.]{0,12}){0,3}$/)), (line) => {
        try {
          parseControlRequest(line);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
        }
      }),
    );
  });

  it('every request encodes to a line that parses back to it (property)', () => {
    fc.assert(
      fc.property(request, (r) => {
        const line = encodeControlRequest(r);
        assert.ok(line.length <= MAX_CONTROL_LINE && !line.includes('\n'));
        assert.deepEqual(parseControlRequest(line), { ...r });
      }),
    );
  });

  it('answers a value in use with its word, and a number with no word as the number', () => {
    assert.equal(settingWord('parity', 2), 'odd');
    assert.equal(settingWord('stopBits', 3), '1.5');
    assert.equal(settingWord('baudRate', 9600), '9600');
    assert.equal(settingWord('parity', 0), '0');
  });

  it('writes modem lines as names, "none" for none', () => {
    assert.equal(lineWords(0), 'none');
    assert.equal(lineWords(ModemLine.cts | ModemLine.dcd), 'cts,dcd');
    assert.equal(lineWords(0xff), 'cts,dsr,dcd,ri');
  });
});
