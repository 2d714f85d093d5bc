import * as os from 'node:os';
import { UnavailableError, UnsupportedError } from '../errors';

type Ioctl = (fd: number, request: number, type: string, arg: Buffer) => number;
type Poll = (fds: Buffer, n: number, timeoutMs: number) => number;

/** The libc calls Node has no binding for. */
export interface Libc {
  ioctl: Ioctl;
  poll: Poll;
  dup2(from: number, to: number): number;
  errno(): number;
}

/** TCGETS2 (asm-generic and x86: the same on linux-x64 and linux-arm64): a tty's struct termios2. */
export const TCGETS2 = 0x802c542a;

let loaded: Libc | undefined;

/**
 * libc through koffi (prebuilt for linux-x64 and linux-arm64 in its npm package), loaded on first
 * use so a process that never needs it never loads it. `what` names the feature in the error off Linux.
 */
export function libc(what: string): Libc {
  if (loaded) return loaded;
  if (process.platform !== 'linux') throw new UnsupportedError(`${what} needs Linux (this is ${process.platform})`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  loaded = {
    ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)') as unknown as Ioctl,
    poll: lib.func('int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)') as unknown as Poll,
    dup2: lib.func('int dup2(int oldfd, int newfd)') as unknown as (from: number, to: number) => number,
    errno: () => koffi.errno(),
  };
  return loaded;
}

export function errnoName(errno: number): string {
  const entry = Object.entries(os.constants.errno).find(([, n]) => n === errno);
  return entry ? entry[0] : `errno ${errno}`;
}

/** ioctl(fd, request, arg) with a pointer argument; an UnavailableError "`what` failed: ERRNO" when it fails. */
export function ioctl(feature: string, fd: number, request: number, arg: Buffer, what: string): void {
  const c = libc(feature);
  if (c.ioctl(fd, request, 'uint8_t *', arg) === 0) return;
  throw new UnavailableError(`${what} failed: ${errnoName(c.errno())}`);
}
