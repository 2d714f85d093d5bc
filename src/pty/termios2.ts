import { ProtocolError } from '../errors';

/**
 * Linux's `struct termios2` (asm-generic and x86 alike): four flag words, the line discipline,
 * 19 control characters and the speeds as plain integers (TCGETS2/TCSETS2), so no B* code table.
 */
export interface Termios2 {
  iflag: number;
  oflag: number;
  cflag: number;
  lflag: number;
  line: number;
  cc: Buffer;
  ispeed: number;
  ospeed: number;
}

export const TERMIOS2_SIZE = 44;
const NCCS = 19;

/** The flag bits the line settings are read from (asm-generic/termbits.h). */
export const IXON = 0o2000;
export const IXOFF = 0o10000;
export const CSTOPB = 0o100;
export const CBAUD = 0o10017;
export const BOTHER = 0o10000;
export const CRTSCTS = 0o20000000000;
export const EXTPROC = 0o200000;
export const CSIZE = 0o60;
export const PARENB = 0o400;
export const PARODD = 0o1000;
export const CMSPAR = 0o10000000000;

export function decodeTermios2(bytes: Buffer): Termios2 {
  if (bytes.length !== TERMIOS2_SIZE) throw new ProtocolError(`struct termios2 is ${TERMIOS2_SIZE} bytes, not ${bytes.length}`);
  return {
    iflag: bytes.readUInt32LE(0),
    oflag: bytes.readUInt32LE(4),
    cflag: bytes.readUInt32LE(8),
    lflag: bytes.readUInt32LE(12),
    line: bytes.readUInt8(16),
    cc: Buffer.from(bytes.subarray(17, 17 + NCCS)),
    ispeed: bytes.readUInt32LE(36),
    ospeed: bytes.readUInt32LE(40),
  };
}

/** Into `out` (TERMIOS2_SIZE bytes, native little-endian as on every Linux this runs on). */
export function encodeTermios2(t: Termios2, out: Buffer = Buffer.alloc(TERMIOS2_SIZE)): Buffer {
  if (t.cc.length !== NCCS) throw new ProtocolError(`termios2 has ${NCCS} control characters, not ${t.cc.length}`);
  out.writeUInt32LE(t.iflag >>> 0, 0);
  out.writeUInt32LE(t.oflag >>> 0, 4);
  out.writeUInt32LE(t.cflag >>> 0, 8);
  out.writeUInt32LE(t.lflag >>> 0, 12);
  out.writeUInt8(t.line, 16);
  t.cc.copy(out, 17);
  out.fill(0, 17 + NCCS, 36);
  out.writeUInt32LE(t.ospeed >>> 0, 40);
  out.writeUInt32LE(t.ispeed >>> 0, 36);
  return out;
}

/**
 * What a pty carries of an app's line settings, in RFC 2217's numbering (as SerialConfigure
 * takes them): baud 0 is the POSIX hang-up (B0: drop DTR). Data bits and parity are not here:
 * the pty driver forces CS8 and clears PARENB on every tcsetattr (drivers/tty/pty.c).
 */
export interface PtyLineSettings {
  baudRate: number;
  /** 1 one, 2 two. */
  stopBits: number;
  /** 1 none, 2 XON/XOFF, 3 RTS/CTS. */
  flowControl: number;
}

export function ptyLineSettings(t: Termios2): PtyLineSettings {
  const flowControl = t.cflag & CRTSCTS ? 3 : (t.iflag & (IXON | IXOFF)) === (IXON | IXOFF) ? 2 : 1;
  return { baudRate: t.ospeed, stopBits: t.cflag & CSTOPB ? 2 : 1, flowControl };
}

/** The B* codes of the standard rates (asm-generic/termbits.h); any other rate is BOTHER. */
const BAUD_CODES: ReadonlyMap<number, number> = new Map(
  [0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400]
    .map((rate, code): [number, number] => [rate, code])
    .concat([57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000].map((rate, i) => [rate, 0o10001 + i])),
);

/**
 * `t` with the settings in use written in, so the app's tcgetattr reads what the device has (the
 * pty's "answered value = value in use"). A standard rate keeps its B* code, as libc's
 * tcgetattr/tcsetattr expect (pyserial writes back what it read); another one is BOTHER.
 */
export function withPtyLineSettings(t: Termios2, s: PtyLineSettings): Termios2 {
  let cflag = (t.cflag & ~(CBAUD | CSTOPB | CRTSCTS)) >>> 0;
  cflag |= (BAUD_CODES.get(s.baudRate) ?? BOTHER) | (s.stopBits === 2 ? CSTOPB : 0) | (s.flowControl === 3 ? CRTSCTS : 0);
  const iflag = s.flowControl === 2 ? (t.iflag | IXON | IXOFF) >>> 0 : (t.iflag & ~(IXON | IXOFF)) >>> 0;
  return { ...t, iflag, cflag: cflag >>> 0, ispeed: s.baudRate, ospeed: s.baudRate };
}
