import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSttyAll } from '../../../agent/drivers/termios-readback';
import { ProtocolError } from '../../../src/errors';

const PTY_9600 = `speed 9600 baud; rows 0; columns 0; line = 0;
intr = ^C; quit = ^\\; erase = ^?; kill = ^U; eof = ^D; eol = <undef>;
werase = ^W; lnext = ^V; discard = ^O; min = 1; time = 0;
-parenb -parodd -cmspar cs8 -hupcl cstopb cread -clocal crtscts
-ignbrk -brkint -ignpar -parmrk -inpck -istrip -inlcr -igncr -icrnl -ixon -ixoff
-iuclc -ixany -imaxbel -iutf8
`;

describe('agent/drivers/termios-readback: stty -a output', () => {
  it('reads speed, character size, parity, stop bits and flow control (captured from a socat pty)', () => {
    assert.deepEqual(parseSttyAll(PTY_9600), { baudRate: '9600', dataBits: '8', parity: 'none', stopBits: '2', flowControl: 'rtscts' });
  });

  it('tells even, odd, mark and space parity and XON/XOFF apart', () => {
    const with_ = (flags: string): string => PTY_9600.replace('-parenb -parodd -cmspar cs8', flags).replace('-ixon -ixoff', 'ixon ixoff').replace(' crtscts', ' -crtscts');
    assert.equal(parseSttyAll(with_('parenb -parodd -cmspar cs7')).parity, 'even');
    assert.equal(parseSttyAll(with_('parenb parodd -cmspar cs7')).parity, 'odd');
    assert.equal(parseSttyAll(with_('parenb parodd cmspar cs7')).parity, 'mark');
    assert.equal(parseSttyAll(with_('parenb -parodd cmspar cs7')).parity, 'space');
    assert.equal(parseSttyAll(with_('-parenb -parodd -cmspar cs5')).dataBits, '5');
    assert.equal(parseSttyAll(with_('-parenb -parodd -cmspar cs8')).flowControl, 'xonxoff');
  });

  it('names what is missing from malformed output', () => {
    assert.throws(() => parseSttyAll(''), /no "speed N baud;"/);
    assert.throws(() => parseSttyAll('speed 9600 baud; -parenb cstopb crtscts -ixon -ixoff'), /no character size/);
    assert.throws(() => parseSttyAll('speed 9600 baud; cs8 -parenb crtscts -ixon -ixoff'), /no "cstopb" flag/);
    assert.throws(() => parseSttyAll('stty: /dev/ttyX: Inappropriate ioctl for device'), ProtocolError);
  });

  it('returns settings or throws ProtocolError for any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        try {
          parseSttyAll(text);
        } catch (err) {
          assert.ok(err instanceof ProtocolError);
        }
      }),
    );
  });
});
