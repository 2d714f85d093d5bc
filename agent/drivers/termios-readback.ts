import * as fs from 'node:fs';
import { DeviceError, errorMessage } from '../../src/errors';
import { ioctl, TCGETS2 } from '../../src/pty/libc';
import { CMSPAR, CRTSCTS, CSIZE, CSTOPB, decodeTermios2, IXOFF, IXON, PARENB, PARODD, type Termios2, TERMIOS2_SIZE } from '../../src/pty/termios2';

/** A serial line's settings as the kernel has them, in the endpoint's configuration vocabulary. */
export interface LineSettings {
  baudRate: string;
  dataBits: string;
  parity: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits: '1' | '2';
  flowControl: 'none' | 'rtscts' | 'xonxoff';
}

/** CS5..CS8 are 0, 0o20, 0o40, 0o60 within CSIZE. */
const DATA_BITS = ['5', '6', '7', '8'] as const;

/** The line settings a struct termios2 holds: its output speed, CSIZE, PARENB/PARODD/CMSPAR, CSTOPB, CRTSCTS and IXON+IXOFF. */
export function lineSettingsOf(t: Termios2): LineSettings {
  let parity: LineSettings['parity'] = 'none';
  if (t.cflag & PARENB) {
    const odd = (t.cflag & PARODD) !== 0;
    parity = t.cflag & CMSPAR ? (odd ? 'mark' : 'space') : odd ? 'odd' : 'even';
  }
  const flowControl = t.cflag & CRTSCTS ? 'rtscts' : (t.iflag & (IXON | IXOFF)) === (IXON | IXOFF) ? 'xonxoff' : 'none';
  return {
    baudRate: String(t.ospeed),
    dataBits: DATA_BITS[(t.cflag & CSIZE) >> 4] as string,
    parity,
    stopBits: t.cflag & CSTOPB ? '2' : '1',
    flowControl,
  };
}

/**
 * Reads a tty's settings back from the kernel: opened non-blocking beside our open (as `stty -F`
 * does), one TCGETS2, closed. Microseconds on the event loop, where forking `stty` cost the agent
 * milliseconds of a blocked loop after every change (docs/benchmarks.md, RFC 2217 settings).
 */
export function readTermios(path: string): Promise<LineSettings> {
  const { O_RDONLY, O_NOCTTY, O_NONBLOCK } = fs.constants;
  try {
    const fd = fs.openSync(path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    try {
      const bytes = Buffer.alloc(TERMIOS2_SIZE);
      ioctl('reading serial line settings', fd, TCGETS2, bytes, 'TCGETS2');
      return Promise.resolve(lineSettingsOf(decodeTermios2(bytes)));
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return Promise.reject(new DeviceError(`cannot read the line settings of ${path}: ${errorMessage(err)}`, { cause: err }));
  }
}
