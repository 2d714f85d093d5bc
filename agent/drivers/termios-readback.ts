import { execFile } from 'node:child_process';
import { DeviceError, ProtocolError } from '../../src/errors';

/** A serial line's settings as the kernel has them, in the endpoint's configuration vocabulary. */
export interface LineSettings {
  baudRate: string;
  dataBits: string;
  parity: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits: '1' | '2';
  flowControl: 'none' | 'rtscts' | 'xonxoff';
}

const READ_TIMEOUT_MS = 2000;

/**
 * Parses `stty -a` output (GNU coreutils): "speed 9600 baud;" and the flag words, each either
 * "name" (set) or "-name" (clear). Throws a ProtocolError when a setting it needs is missing.
 */
export function parseSttyAll(text: string): LineSettings {
  const speed = /(?:^|\s)speed (\d+) baud;/.exec(text);
  if (!speed) throw new ProtocolError('stty output has no "speed N baud;"');
  const flags = new Map<string, boolean>();
  for (const word of text.split(/\s+/)) {
    const m = /^(-?)([a-z][a-z0-9]*)$/.exec(word);
    if (m) flags.set(m[2] as string, m[1] === '');
  }
  const flag = (name: string): boolean => {
    const v = flags.get(name);
    if (v === undefined) throw new ProtocolError(`stty output has no "${name}" flag`);
    return v;
  };
  const size = ['cs5', 'cs6', 'cs7', 'cs8'].find((cs) => flags.get(cs) === true);
  if (!size) throw new ProtocolError('stty output has no character size (cs5..cs8)');
  let parity: LineSettings['parity'] = 'none';
  if (flag('parenb')) {
    const stick = flags.get('cmspar') === true;
    const odd = flag('parodd');
    parity = stick ? (odd ? 'mark' : 'space') : odd ? 'odd' : 'even';
  }
  const flowControl = flag('crtscts') ? 'rtscts' : flag('ixon') && flag('ixoff') ? 'xonxoff' : 'none';
  return { baudRate: speed[1] as string, dataBits: size.slice(2), parity, stopBits: flag('cstopb') ? '2' : '1', flowControl };
}

/** Reads a tty's settings back with `stty -F` (which opens it non-blocking, beside our open). */
export function readTermios(path: string): Promise<LineSettings> {
  return new Promise((resolve, reject) => {
    execFile('stty', ['-F', path, '-a'], { timeout: READ_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) {
        reject(new DeviceError(`cannot read the line settings of ${path}: ${stderr.trim() || err.message}`, { cause: err }));
        return;
      }
      try {
        resolve(parseSttyAll(stdout));
      } catch (parseErr) {
        reject(parseErr);
      }
    });
  });
}
