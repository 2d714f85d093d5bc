import * as fs from 'node:fs';
import { Duplex } from 'node:stream';
import type { BindingPortInterface } from '@serialport/bindings-interface';
import { DeviceError, errorMessage } from '../../src/errors';

/** libuv's poll flags, as @serialport/bindings-cpp's Poller uses them. */
const UV_READABLE = 1;
const UV_WRITABLE = 2;
const UV_DISCONNECT = 4;

/** Bytes buffered each way before backpressure, as SerialPortStream has. */
const HIGH_WATER_MARK = 64 * 1024;
/** Reads land in a pool of this size, sliced into the chunks pushed; a new pool once less than MIN_POOL_SPACE is left. */
const POOL_SIZE = 64 * 1024;
const MIN_POOL_SPACE = 2048;

type PollListener = (err: Error | null | undefined) => void;

/** bindings-cpp's (unexported) Poller: an EventEmitter over the native FDPoller, which holds the fd's one uv_poll. */
interface FdPoller {
  on(event: string, listener: PollListener): unknown;
  off(event: string, listener: PollListener): unknown;
  poller: { poll(events: number): void };
}

/** The fd and poller of a bindings-cpp Unix port; undefined for other ports (the simulated one, Windows). */
function unixPortOf(port: BindingPortInterface): { fd: number; poller: FdPoller } | undefined {
  const p = port as BindingPortInterface & { fd?: unknown; poller?: Partial<FdPoller> };
  const poller = p.poller;
  if (typeof p.fd !== 'number' || typeof poller?.on !== 'function' || typeof poller.off !== 'function') return undefined;
  if (typeof poller.poller?.poll !== 'function') return undefined;
  return { fd: p.fd, poller: poller as FdPoller };
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isCanceled(err: unknown): boolean {
  return (err as { canceled?: unknown } | null)?.canceled === true;
}

/**
 * The bytes of one open serial port as a Duplex, for the data path.
 *
 * On a bindings-cpp Unix port (fd opened O_NONBLOCK, one uv_poll per fd) every read and write is
 * a synchronous read(2)/write(2) on the event loop, made when the port's poller says it can
 * proceed: no hop to libuv's threadpool and back per chunk, which is what serialport's own stream
 * costs (fs.read/fs.write after each poll). The uv_poll is armed with exactly what is waited for
 * (readable while the reader wants data, writable while a write waits for room, disconnect
 * always), so neither bug that poller-workaround.ts patches can occur: nothing else polls this fd.
 * Other ports (the simulated binding, Windows) are read and written through the binding's own
 * read()/write().
 *
 * Backpressure is exact: a write's callback runs once all its bytes are in the kernel; the reader
 * stops reading the fd once push() says so. Configuration (update, set, get, flush) stays with
 * the binding's port (`port`); drain() waits for the write in progress first. detach()/attach()
 * swap the port underneath for a reopen: reads and writes wait meanwhile and carry on, in order,
 * on the new port.
 *
 * A device that goes away (hangup, EIO/ENXIO, a poll error or disconnect) closes the port and the
 * stream: 'close' is emitted with a DeviceError saying why and no 'error', as SerialPortStream
 * does on a disconnect. destroy(err) emits 'error' and then 'close' (with no reason).
 */
export class EventLoopSerialStream extends Duplex {
  private current: BindingPortInterface | undefined;
  /** Set while the port is a Unix one: read and write on the event loop. */
  private fd = -1;
  private poller: FdPoller | undefined;
  /** Poll events armed now; -1 when unknown (the native poller re-arms by itself after each event). */
  private armed = -1;
  /** The reader wants more (set by _read, cleared once push() returns false). */
  private readWanted = false;
  /** Binding mode: a read() of the port is pending. */
  private readInFlight = false;
  private pool: Buffer = Buffer.allocUnsafe(POOL_SIZE);
  private poolUsed = 0;
  /** The write in progress: accepted by _write, not yet all in the kernel (fields, not an object per chunk). */
  private pending: Buffer | undefined;
  private pendingOffset = 0;
  private pendingCallback: ((err?: Error | null) => void) | undefined;
  /** Binding mode: the pending write is with the port's write(). */
  private writeInFlight = false;
  /** Waiting for the write in progress to be all in the kernel (or the stream to close). */
  private readonly settleWaiters: Array<() => void> = [];
  /** Why the device went away, given with 'close'. */
  private reason: DeviceError | undefined;
  private closeFailure: unknown;
  private closeEmitted = false;

  constructor(
    readonly path: string,
    port: BindingPortInterface,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK, emitClose: false });
    this.onReadable = this.onReadable.bind(this);
    this.onWritable = this.onWritable.bind(this);
    this.onDisconnect = this.onDisconnect.bind(this);
    this.attach(port);
  }

  /** The binding's port, for configuration; undefined while detached or once closed. */
  get port(): BindingPortInterface | undefined {
    return this.current;
  }

  get isOpen(): boolean {
    return this.current?.isOpen === true && !this.destroyed;
  }

  /**
   * Takes the stream off its port for a reopen: waits until the write in progress is all in the
   * kernel, then stops polling. Reads and writes wait until attach().
   * @returns the port, still open: the caller drains and closes it.
   */
  async detach(): Promise<BindingPortInterface | undefined> {
    await this.writeSettled();
    return this.release();
  }

  /**
   * Puts the stream on a (re)opened port: waiting reads and writes carry on there.
   * @returns false when the stream is closed already: the port was not taken, the caller closes it.
   */
  attach(port: BindingPortInterface): boolean {
    if (this.destroyed) return false;
    this.current = port;
    const unix = unixPortOf(port);
    if (unix) {
      this.fd = unix.fd;
      this.poller = unix.poller;
      this.armed = -1;
      unix.poller.on('readable', this.onReadable);
      unix.poller.on('writable', this.onWritable);
      unix.poller.on('disconnect', this.onDisconnect);
      if (this.pending) this.writeSome();
      if (!this.destroyed) this.arm();
    } else {
      if (this.pending) this.writeWithBinding();
      this.readWithBinding();
    }
    return true;
  }

  /** Waits until the write in progress is all in the kernel, then until the port has sent it (tcdrain). */
  async drain(): Promise<void> {
    await this.writeSettled();
    const port = this.current;
    if (!port?.isOpen) throw new DeviceError(`${this.path}: device is not open`);
    await port.drain();
  }

  /** Closes the port and the stream; rejects with a DeviceError when the port does not close. */
  close(): Promise<void> {
    const settled = (): Promise<void> =>
      this.closeFailure === undefined
        ? Promise.resolve()
        : Promise.reject(new DeviceError(`${this.path}: close failed: ${errorMessage(this.closeFailure)}`, { cause: this.closeFailure }));
    if (this.closeEmitted) return settled();
    return new Promise<void>((resolve, reject) => {
      this.once('close', () => settled().then(resolve, reject));
      this.destroy();
    });
  }

  override _read(): void {
    this.readWanted = true;
    if (!this.current) return;
    if (this.poller) this.arm();
    else this.readWithBinding();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.pending = chunk;
    this.pendingOffset = 0;
    this.pendingCallback = callback;
    if (!this.current) return;
    if (this.poller) {
      this.writeSome();
      if (!this.destroyed) this.arm();
    } else {
      this.writeWithBinding();
    }
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const port = this.release();
    const pending = this.pending ? this.pendingCallback : undefined;
    this.pending = this.pendingCallback = undefined;
    this.settleWrite();
    const done = (): void => {
      callback(err);
      process.nextTick(() => {
        this.closeEmitted = true;
        this.emit('close', this.reason);
      });
      pending?.(err ?? this.reason ?? new DeviceError(`${this.path}: the port was closed before the write went out`));
    };
    if (!port?.isOpen) {
      done();
      return;
    }
    port.close().then(done, (closeErr: unknown) => {
      this.closeFailure = closeErr;
      done();
    });
  }

  /* ---- event loop (Unix port) ---- */

  /** Arms the uv_poll with exactly what is waited for; the native poller re-arms by itself after every event, hence `armed`. */
  private arm(): void {
    const poller = this.poller;
    if (!poller) return;
    const events = UV_DISCONNECT | (this.readWanted ? UV_READABLE : 0) | (this.pending ? UV_WRITABLE : 0);
    if (events === this.armed) return;
    this.armed = events;
    try {
      poller.poller.poll(events);
    } catch (err) {
      this.gone(err);
    }
  }

  private onReadable(err: Error | null | undefined): void {
    this.armed = -1;
    if (err) {
      this.gone(err);
      return;
    }
    this.readAvailable();
    if (!this.destroyed) this.arm();
  }

  private onWritable(err: Error | null | undefined): void {
    this.armed = -1;
    if (err) {
      this.gone(err);
      return;
    }
    if (this.pending) this.writeSome();
    if (!this.destroyed) this.arm();
  }

  private onDisconnect(err: Error | null | undefined): void {
    this.armed = -1;
    this.gone(err ?? new DeviceError('disconnected'));
  }

  /** Reads what the fd has while the reader wants it; a read that fills its room is followed by another. */
  private readAvailable(): void {
    const fd = this.fd;
    while (this.readWanted && this.fd === fd) {
      if (this.pool.length - this.poolUsed < MIN_POOL_SPACE) {
        this.pool = Buffer.allocUnsafe(POOL_SIZE);
        this.poolUsed = 0;
      }
      const pool = this.pool;
      const start = this.poolUsed;
      const room = pool.length - start;
      let n: number;
      try {
        n = fs.readSync(fd, pool, start, room, null);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'EINTR') continue;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') this.gone(err);
        return;
      }
      // A tty reads 0 only once it is hung up (non-blocking, VMIN 1): the device is gone.
      if (n === 0) {
        this.gone(new DeviceError('hung up'));
        return;
      }
      this.poolUsed = start + n;
      this.readWanted = this.push(pool.subarray(start, start + n));
      if (n < room) return;
    }
  }

  /**
   * Writes as much of the pending chunk as the fd takes; completes it once it is all in. A short
   * write means the kernel's buffer is full: the rest waits for 'writable' rather than for the
   * EAGAIN of another try (a thrown error, with its stack, each time).
   */
  private writeSome(): void {
    const chunk = this.pending as Buffer;
    const want = chunk.length - this.pendingOffset;
    let n: number;
    for (;;) {
      try {
        n = fs.writeSync(this.fd, chunk, this.pendingOffset, want);
        break;
      } catch (err) {
        const code = codeOf(err);
        if (code === 'EINTR') continue;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') this.gone(err);
        return;
      }
    }
    this.pendingOffset += n;
    if (n === want) this.completeWrite();
  }

  /* ---- binding (other ports) ---- */

  private readWithBinding(): void {
    const port = this.current;
    if (!port || this.readInFlight || !this.readWanted || this.destroyed) return;
    if (this.pool.length - this.poolUsed < MIN_POOL_SPACE) {
      this.pool = Buffer.allocUnsafe(POOL_SIZE);
      this.poolUsed = 0;
    }
    const pool = this.pool;
    const start = this.poolUsed;
    this.readInFlight = true;
    port.read(pool, start, pool.length - start).then(
      ({ bytesRead }) => {
        this.readInFlight = false;
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.gone(new DeviceError('end of input'));
          return;
        }
        if (this.pool === pool) this.poolUsed = start + bytesRead;
        this.readWanted = this.push(pool.subarray(start, start + bytesRead));
        this.readWithBinding();
      },
      (err: unknown) => {
        this.readInFlight = false;
        if (this.destroyed) return;
        // Canceled: the port was closed under the read (a reopen); read on from whichever port there is.
        if (isCanceled(err)) this.readWithBinding();
        else if (port === this.current) this.gone(err);
      },
    );
  }

  private writeWithBinding(): void {
    const port = this.current;
    const pending = this.pending;
    if (!port || !pending || this.writeInFlight) return;
    this.writeInFlight = true;
    port.write(pending).then(
      () => {
        this.writeInFlight = false;
        if (this.pending === pending) this.completeWrite();
      },
      (err: unknown) => {
        this.writeInFlight = false;
        if (this.pending === pending && !isCanceled(err)) this.gone(err);
      },
    );
  }

  /* ---- both ---- */

  private completeWrite(): void {
    const callback = this.pendingCallback as (err?: Error | null) => void;
    this.pending = this.pendingCallback = undefined;
    this.settleWrite();
    callback();
  }

  private writeSettled(): Promise<void> {
    if (!this.pending || !this.current || this.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private settleWrite(): void {
    if (this.settleWaiters.length === 0) return;
    for (const settled of this.settleWaiters.splice(0)) settled();
  }

  /** Stops using the port (no more polling); returns it as it is. */
  private release(): BindingPortInterface | undefined {
    const port = this.current;
    const poller = this.poller;
    this.current = undefined;
    this.poller = undefined;
    this.fd = -1;
    this.armed = -1;
    if (poller) {
      poller.off('readable', this.onReadable);
      poller.off('writable', this.onWritable);
      poller.off('disconnect', this.onDisconnect);
      if (port?.isOpen) {
        try {
          poller.poller.poll(0);
        } catch {
          // The poller is already stopped: nothing left to disarm.
        }
      }
    }
    return port;
  }

  /** The device went away: close the port and the stream, with the reason on 'close'. */
  private gone(cause: unknown): void {
    if (this.destroyed) return;
    const code = codeOf(cause);
    this.reason = new DeviceError(`${this.path}: the device is gone (${errorMessage(cause)}${code ? `, ${code}` : ''})`, { cause });
    this.destroy();
  }
}
