import * as fs from 'node:fs';
import * as os from 'node:os';
import { UnavailableError, UnsupportedError } from '../src/errors';
import { decodeTermios2, encodeTermios2, EXTPROC, type Termios2, TERMIOS2_SIZE } from '../src/pty/termios2';

/** ioctl numbers (asm-generic and x86: the same on linux-x64 and linux-arm64). */
const TIOCPKT = 0x5420;
const TIOCSPTLCK = 0x40045431;
const TIOCGPTN = 0x80045430;
const TCGETS2 = 0x802c542a;
const TCSETS2 = 0x402c542b;
const TIOCSLCKTRMIOS = 0x5457;
const POLLHUP = 0x10;
/** struct termios as TIOCSLCKTRMIOS reads it: its c_lflag is at offset 12, the rest stays 0 (unlocked). */
const LOCK_SIZE = 60;

type Ioctl = (fd: number, request: number, type: string, arg: Buffer) => number;
type Poll = (fds: Buffer, n: number, timeoutMs: number) => number;
interface Libc {
  ioctl: Ioctl;
  poll: Poll;
  dup2(from: number, to: number): number;
  errno(): number;
}

let libc: Libc | undefined;

/**
 * The calls Node has no binding for, through koffi (prebuilt for linux-x64 and linux-arm64 in
 * its npm package), loaded on the first pty so a sidecar without one never loads it.
 */
function native(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') throw new UnsupportedError(`virtual protocol pty needs Linux (this is ${process.platform})`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  libc = {
    ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)') as unknown as Ioctl,
    poll: lib.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)') as unknown as Poll,
    dup2: lib.func('int dup2(int oldfd, int newfd)') as unknown as (from: number, to: number) => number,
    errno: () => koffi.errno(),
  };
  return libc;
}

function errnoName(errno: number): string {
  const entry = Object.entries(os.constants.errno).find(([, n]) => n === errno);
  return entry ? entry[0] : `errno ${errno}`;
}

function ioctl(fd: number, request: number, arg: Buffer, what: string): void {
  const c = native();
  if (c.ioctl(fd, request, 'uint8_t *', arg) === 0) return;
  throw new UnavailableError(`pty: ${what} failed: ${errnoName(c.errno())}`);
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
