import * as fs from 'node:fs';
import { binding } from '@serialport/bindings-cpp/dist/serialport-bindings';
import { errorMessage, UnavailableError } from '../src/errors';
import { PacketStatus } from '../src/pty/packet-mode';
import type { Termios2 } from '../src/pty/termios2';
import { keepExtproc, moveFd, openPtyMaster, readTermios, slaveClosed, writeTermios } from './pty-native';

/** libuv's poll flags. */
const UV_READABLE = 1;
const UV_WRITABLE = 2;
const UV_DISCONNECT = 4;
/** While no app has the port open, this often the master is asked (poll(2), timeout 0) whether one has. */
export const OPEN_CHECK_MS = 20;
const POOL_SIZE = 64 * 1024;
const MIN_POOL_SPACE = 4096;

/** bindings-cpp's native FDPoller: one uv_poll on an fd, its callback run on the event loop. */
interface FdPoller {
  poll(events: number): void;
  stop(): void;
}
const FdPollerClass = (binding as { Poller: new (fd: number, cb: (err: Error | null, events: number) => void) => FdPoller }).Poller;

/**
 * A master's fd number and its uv_poll. bindings-cpp's Poller.destroy() only drops the JS
 * reference: the uv_poll is stopped by the destructor at garbage collection, and that stop is an
 * epoll_ctl(DEL) of the fd number, by then perhaps another device's descriptor, which would go
 * deaf. So pollers are stopped by hand and never destroyed: a closed master's number is held by
 * /dev/null and taken, with its poller, by the next master (as many as were ever open at once).
 */
interface PollSlot {
  readonly fd: number;
  readonly poller: FdPoller;
  owner: PtyMaster | undefined;
}
const spareSlots: PollSlot[] = [];

/** The one downstream of a pty master: the bridge of the app that has the port open. */
export interface PtyMasterSink {
  /** An app opened the slave. */
  appOpened(): void;
  /** One packet: `status` 0 with the app's bytes, or PacketStatus flags. @returns false to stop reading until resume(). */
  packet(status: number, data: Buffer): boolean;
  /** Everything written has gone into the pty. */
  drained(): void;
  /** The app closed the slave (every byte it wrote was delivered first). */
  appClosed(): void;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * One pseudo-terminal, master side, in packet mode with EXTPROC: the app's bytes, its termios
 * changes and its flushes come as packets, read with read(2) on the event loop when the fd's
 * uv_poll says so (never a threadpool read that pins a worker). Writes go the same way, queued
 * while the pty is full (bounded by the session's credit upstream).
 *
 * An app opening or closing the slave is seen through the kernel's HUP on the master: while no
 * one has the slave open the master polls HUP, which would wake a uv_poll without end, so then a
 * timer asks every OPEN_CHECK_MS instead (the only timer; none per byte).
 */
export class PtyMaster {
  readonly fd: number;
  private readonly slot: PollSlot;
  slavePath: string;
  /** EXTPROC is locked in the slave's termios (root); otherwise it is put back after each change. */
  extprocLocked: boolean;
  private readonly poller: FdPoller;
  private sink: PtyMasterSink | undefined;
  private appOpen = false;
  private reading = false;
  /** The app closed the slave: read what is left, then report it. */
  private hungUp = false;
  private armed = -1;
  private openTimer: NodeJS.Timeout | undefined;
  private readonly queue: Buffer[] = [];
  private queueOffset = 0;
  private pool = Buffer.allocUnsafe(POOL_SIZE);
  private poolUsed = 0;
  private closed = false;
  /** The app's bytes read and the device's bytes written into the pty, for the stats. */
  bytesRead = 0;
  bytesWritten = 0;
  /** Counts app opens and replacements: what was started for one app is known stale by it. */
  generation = 0;

  constructor() {
    const { fd, slavePath, extprocLocked } = PtyMaster.setUp();
    this.slot = PtyMaster.slotFor(fd);
    this.slot.owner = this;
    this.fd = this.slot.fd;
    this.poller = this.slot.poller;
    this.slavePath = slavePath;
    this.extprocLocked = extprocLocked;
  }

  /** A spare slot with `fd` moved under its number, or a new slot for `fd`. */
  private static slotFor(fd: number): PollSlot {
    const spare = spareSlots.pop();
    if (!spare) {
      const slot: PollSlot = { fd, poller: new FdPollerClass(fd, (err, events) => slot.owner?.onPoll(err, events)), owner: undefined };
      return slot;
    }
    try {
      moveFd(fd, spare.fd);
    } catch (err) {
      spareSlots.push(spare);
      fs.closeSync(fd);
      throw err;
    }
    return spare;
  }

  private static setUp(): { fd: number; slavePath: string; extprocLocked: boolean } {
    const { fd, slavePath } = openPtyMaster();
    try {
      const extprocLocked = keepExtproc(fd);
      // Opened and closed once, so the master polls HUP until an app opens it.
      fs.closeSync(fs.openSync(slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK));
      return { fd, slavePath, extprocLocked };
    } catch (err) {
      fs.closeSync(fd);
      throw new UnavailableError(`pty ${slavePath}: cannot set it up: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * Hangs the app up and goes on with a new pseudo-terminal under the same fd number: the old
   * master is closed by dup2 (the app reads EOF, then EIO). The fd's uv_poll is stopped first, so
   * it is added to epoll afresh (see PollSlot).
   */
  replace(): void {
    if (this.closed) return;
    const next = PtyMaster.setUp();
    clearTimeout(this.openTimer);
    this.poller.stop();
    this.armed = 0;
    moveFd(next.fd, this.fd);
    this.slavePath = next.slavePath;
    this.extprocLocked = next.extprocLocked;
    this.generation++;
    this.appOpen = this.reading = this.hungUp = false;
    this.discardQueued();
    this.bytesRead = this.bytesWritten = 0;
    this.watchForOpen();
  }

  /** Starts watching for an app; `sink` gets everything from then on. */
  start(sink: PtyMasterSink): void {
    this.sink = sink;
    this.watchForOpen();
  }

  get isAppOpen(): boolean {
    return this.appOpen;
  }

  termios(): Termios2 {
    return readTermios(this.fd);
  }

  setTermios(t: Termios2): void {
    writeTermios(this.fd, t);
  }

  /** Puts EXTPROC back when the app cleared it and it is not locked. */
  restoreExtproc(): void {
    if (!this.extprocLocked) keepExtproc(this.fd);
  }

  /** Reads packets until the sink says stop. */
  resume(): void {
    if (this.closed || !this.appOpen) return;
    this.reading = true;
    if (this.hungUp) this.readAvailable();
    else this.arm();
  }

  pause(): void {
    this.reading = false;
    this.arm();
  }

  /** Bytes for the app. @returns false when they wait for room: `drained()` follows. */
  write(chunk: Buffer): boolean {
    if (this.closed) return true;
    this.queue.push(chunk);
    if (this.queue.length === 1) this.writeSome();
    if (this.queue.length > 0) this.arm();
    return this.queue.length === 0;
  }

  /** Drops what waits for room (a flush); returns how many bytes that was. */
  discardQueued(): number {
    let n = -this.queueOffset;
    for (const chunk of this.queue) n += chunk.length;
    this.queue.length = 0;
    this.queueOffset = 0;
    this.arm();
    return n;
  }

  /**
   * Closes the master: an app with the slave open gets a hang-up (EOF, then EIO), as from a pulled
   * adapter. The uv_poll is stopped before the descriptor goes; its number is held by /dev/null
   * for the next master (see PollSlot).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.openTimer);
    this.poller.stop();
    this.slot.owner = undefined;
    moveFd(fs.openSync('/dev/null', fs.constants.O_RDONLY), this.fd);
    spareSlots.push(this.slot);
  }

  private watchForOpen(): void {
    if (this.closed) return;
    this.openTimer = setTimeout(() => {
      this.openTimer = undefined;
      if (this.closed) return;
      if (slaveClosed(this.fd)) this.watchForOpen();
      else {
        this.appOpen = true;
        this.hungUp = false;
        this.generation++;
        this.sink?.appOpened();
      }
    }, OPEN_CHECK_MS);
  }

  private arm(): void {
    if (this.closed) return;
    if (!this.appOpen || this.hungUp) {
      if (this.armed !== 0) this.poller.stop();
      this.armed = 0;
      return;
    }
    const events = UV_DISCONNECT | (this.reading ? UV_READABLE : 0) | (this.queue.length > 0 ? UV_WRITABLE : 0);
    if (events === this.armed) return;
    this.armed = events;
    this.poller.poll(events);
  }

  private onPoll(err: Error | null, events: number): void {
    this.armed = -1;
    if (this.closed) return;
    if (err || events & UV_DISCONNECT) this.hungUp = true;
    if (this.queue.length > 0 && !this.hungUp) this.writeSome();
    if (this.reading || this.hungUp) this.readAvailable();
    this.arm();
  }

  /** Reads packets while the sink wants them; EIO means the app closed the slave and all it wrote was read. */
  private readAvailable(): void {
    while (this.reading && !this.closed) {
      if (this.pool.length - this.poolUsed < MIN_POOL_SPACE) {
        this.pool = Buffer.allocUnsafe(POOL_SIZE);
        this.poolUsed = 0;
      }
      const start = this.poolUsed;
      let n: number;
      try {
        n = fs.readSync(this.fd, this.pool, start, this.pool.length - start, null);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'EINTR') continue;
        if (code === 'EAGAIN' && !this.hungUp) return;
        this.appGone();
        return;
      }
      if (n === 0) {
        this.appGone();
        return;
      }
      this.poolUsed = start + n;
      const status = this.pool[start] as number;
      const data = status === PacketStatus.data ? this.pool.subarray(start + 1, start + n) : this.pool.subarray(start, start);
      this.bytesRead += data.length;
      this.reading = this.sink?.packet(status, data) ?? false;
    }
  }

  private appGone(): void {
    this.appOpen = false;
    this.reading = false;
    this.hungUp = false;
    this.discardQueued();
    this.arm();
    this.sink?.appClosed();
    this.watchForOpen();
  }

  private writeSome(): void {
    while (this.queue.length > 0) {
      const chunk = this.queue[0] as Buffer;
      let n: number;
      try {
        n = fs.writeSync(this.fd, chunk, this.queueOffset, chunk.length - this.queueOffset);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'EINTR') continue;
        if (code === 'EAGAIN') return;
        // The slave is gone: what is queued has no reader; the read side reports the close.
        this.discardQueued();
        return;
      }
      this.queueOffset += n;
      this.bytesWritten += n;
      if (this.queueOffset < chunk.length) return;
      this.queue.shift();
      this.queueOffset = 0;
    }
    this.sink?.drained();
  }
}
