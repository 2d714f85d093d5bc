import * as fs from 'node:fs';
import { UnavailableError } from '../src/errors';
import { errnoName, ioctl as libcIoctl, type Libc, libc, TCGETS2 } from '../src/pty/libc';
import { decodeTermios2, encodeTermios2, EXTPROC, type Termios2, TERMIOS2_SIZE } from '../src/pty/termios2';

/** ioctl numbers (asm-generic and x86: the same on linux-x64 and linux-arm64). */
const TIOCPKT = 0x5420;
const TIOCSPTLCK = 0x40045431;
const TIOCGPTN = 0x80045430;
const TCSETS2 = 0x402c542b;
const TIOCSLCKTRMIOS = 0x5457;
const POLLHUP = 0x10;
/** struct termios as TIOCSLCKTRMIOS reads it: its c_lflag is at offset 12, the rest stays 0 (unlocked). */
const LOCK_SIZE = 60;
const FEATURE = 'virtual protocol pty';

function native(): Libc {
  return libc(FEATURE);
}

function ioctl(fd: number, request: number, arg: Buffer, what: string): void {
  libcIoctl(FEATURE, fd, request, arg, `pty: ${what}`);
}

/** A new pty master, non-blocking, unlocked; returns its fd and the slave's path (/dev/pts/N). */
export function openPtyMaster(): { fd: number; slavePath: string } {
  const { O_RDWR, O_NOCTTY, O_NONBLOCK } = fs.constants;
  const fd = fs.openSync('/dev/ptmx', O_RDWR | O_NOCTTY | O_NONBLOCK);
  try {
    const n = Buffer.alloc(4);
    ioctl(fd, TIOCSPTLCK, n, 'unlockpt');
    ioctl(fd, TIOCGPTN, n, 'ptsname');
    const slavePath = `/dev/pts/${n.readInt32LE(0)}`;
    n.writeInt32LE(1, 0);
    ioctl(fd, TIOCPKT, n, 'packet mode (TIOCPKT)');
    return { fd, slavePath };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/** The slave's termios, read through the master (the kernel's termios ioctls on a master act on its slave). */
export function readTermios(fd: number): Termios2 {
  const bytes = Buffer.alloc(TERMIOS2_SIZE);
  ioctl(fd, TCGETS2, bytes, 'TCGETS2');
  return decodeTermios2(bytes);
}

export function writeTermios(fd: number, t: Termios2): void {
  ioctl(fd, TCSETS2, encodeTermios2(t), 'TCSETS2');
}

/**
 * EXTPROC in the slave's c_lflag makes each tcsetattr of the app arrive at the master as a
 * TIOCPKT_IOCTL packet. Locked (TIOCSLCKTRMIOS, needs CAP_SYS_ADMIN) an app that clears the whole
 * c_lflag (Node serialport does) cannot turn it off; unlocked it is set again after each change.
 * @returns whether the lock took.
 */
export function keepExtproc(fd: number): boolean {
  const t = readTermios(fd);
  if ((t.lflag & EXTPROC) === 0) writeTermios(fd, { ...t, lflag: (t.lflag | EXTPROC) >>> 0 });
  const lock = Buffer.alloc(LOCK_SIZE);
  lock.writeUInt32LE(EXTPROC, 12);
  try {
    ioctl(fd, TIOCSLCKTRMIOS, lock, 'lock EXTPROC');
    return true;
  } catch {
    return false;
  }
}

/** Makes fd `to` refer to what `from` refers to (closing what `to` had), then closes `from`. */
export function moveFd(from: number, to: number): void {
  const c = native();
  if (c.dup2(from, to) < 0) throw new UnavailableError(`pty: dup2 failed: ${errnoName(c.errno())}`);
  fs.closeSync(from);
}

const pollFd = Buffer.alloc(8);

/** True while no one has the slave open (the master polls HUP), without reading anything. */
export function slaveClosed(fd: number): boolean {
  pollFd.writeInt32LE(fd, 0);
  pollFd.writeInt16LE(0, 4);
  pollFd.writeInt16LE(0, 6);
  if (native().poll(pollFd, 1, 0) < 0) return false;
  return (pollFd.readInt16LE(6) & POLLHUP) !== 0;
}
