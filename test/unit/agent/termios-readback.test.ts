import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { lineSettingsOf } from '../../../agent/drivers/termios-readback';
import { ProtocolError } from '../../../src/errors';
import {
  CMSPAR,
  CRTSCTS,
  CSTOPB,
  decodeTermios2,
  encodeTermios2,
  IXOFF,
  IXON,
  PARENB,
  PARODD,
  type Termios2,
  TERMIOS2_SIZE,
} from '../../../src/pty/termios2';

const CS7 = 0o40;
const CS8 = 0o60;
const CREAD = 0o200;

/** A socat pty at 9600 with two stop bits and RTS/CTS, as the kernel returns it. */
function termios(cflag: number, iflag = 0, speed = 9600): Termios2 {
  return { iflag, oflag: 0, cflag: (cflag | CREAD) >>> 0, lflag: 0, line: 0, cc: Buffer.alloc(19), ispeed: speed, ospeed: speed };
}

describe('agent/drivers/termios-readback: struct termios2 → line settings', () => {
  it('reads speed, character size, parity, stop bits and flow control', () => {
    assert.deepEqual(lineSettingsOf(termios(CS8 | CSTOPB | CRTSCTS)), { baudRate: '9600', dataBits: '8', parity: 'none', stopBits: '2', flowControl: 'rtscts' });
    assert.equal(lineSettingsOf(termios(CS8, 0, 250_000)).baudRate, '250000');
  });

  it('tells even, odd, mark and space parity, the character sizes and XON/XOFF apart', () => {
    assert.equal(lineSettingsOf(termios(CS7 | PARENB)).parity, 'even');
    assert.equal(lineSettingsOf(termios(CS7 | PARENB | PARODD)).parity, 'odd');
    assert.equal(lineSettingsOf(termios(CS7 | PARENB | PARODD | CMSPAR)).parity, 'mark');
    assert.equal(lineSettingsOf(termios(CS7 | PARENB | CMSPAR)).parity, 'space');
    assert.equal(lineSettingsOf(termios(CMSPAR | PARODD)).parity, 'none');
    assert.deepEqual([0, 0o20, CS7, CS8].map((cs) => lineSettingsOf(termios(cs)).dataBits), ['5', '6', '7', '8']);
    assert.equal(lineSettingsOf(termios(CS8, IXON | IXOFF)).flowControl, 'xonxoff');
    assert.equal(lineSettingsOf(termios(CS8, IXON)).flowControl, 'none');
    assert.equal(lineSettingsOf(termios(CS8 | CRTSCTS, IXON | IXOFF)).flowControl, 'rtscts');
  });

  it('refuses a struct of the wrong size with a ProtocolError', () => {
    for (const n of [0, TERMIOS2_SIZE - 1, TERMIOS2_SIZE + 1, 60]) assert.throws(() => lineSettingsOf(decodeTermios2(Buffer.alloc(n))), ProtocolError);
  });

  it('gives valid settings for any 44 bytes, and what the flags say after an encode', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: TERMIOS2_SIZE, maxLength: TERMIOS2_SIZE }), (bytes) => {
        const s = lineSettingsOf(decodeTermios2(Buffer.from(bytes)));
        assert.ok(['5', '6', '7', '8'].includes(s.dataBits));
        assert.ok(['none', 'even', 'odd', 'mark', 'space'].includes(s.parity));
        assert.ok(['1', '2'].includes(s.stopBits));
        assert.ok(['none', 'rtscts', 'xonxoff'].includes(s.flowControl));
        assert.match(s.baudRate, /^\d+$/);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: 4_000_000 }), (size, stop2, rtscts, speed) => {
        const t = decodeTermios2(encodeTermios2(termios((size << 4) | (stop2 ? CSTOPB : 0) | (rtscts ? CRTSCTS : 0), 0, speed)));
        assert.deepEqual(lineSettingsOf(t), {
          baudRate: String(speed),
          dataBits: String(size + 5),
          parity: 'none',
          stopBits: stop2 ? '2' : '1',
          flowControl: rtscts ? 'rtscts' : 'none',
        });
      }),
    );
  });
});
