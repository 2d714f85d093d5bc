/**
 * TIOCPKT: every read of a pty master in packet mode starts with one status byte. 0 is data (the
 * bytes follow); anything else is a set of these flags and no data (include/uapi/asm-generic/ioctls.h).
 */
export const PacketStatus = {
  data: 0x00,
  /** The slave's input queue was flushed (tcflush TCIFLUSH). */
  flushRead: 0x01,
  /** The slave's output queue was flushed (tcflush TCOFLUSH). */
  flushWrite: 0x02,
  /** The slave's output was stopped (^S, tcflow TCOOFF) … */
  stop: 0x04,
  /** … and started again. */
  start: 0x08,
  /** IXON with ^S/^Q turned on, or off. */
  doStop: 0x20,
  noStop: 0x10,
  /** The slave's termios changed (needs EXTPROC in its c_lflag): read it with TCGETS2 on the master. */
  ioctl: 0x40,
} as const;

/** A status byte's flags by name, for logs and counters. */
export function packetFlagNames(status: number): string[] {
  return (Object.keys(PacketStatus) as Array<keyof typeof PacketStatus>).filter((name) => PacketStatus[name] !== 0 && (status & PacketStatus[name]) !== 0);
}
