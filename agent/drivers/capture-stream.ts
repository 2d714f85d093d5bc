import * as fs from 'node:fs';
import { Duplex } from 'node:stream';
import { EVENTS, Poller } from '@serialport/bindings-cpp/dist/poller';
import { DeviceError, errorMessage, UnsupportedError } from '../../src/errors';

/** read(2) errors that mean the node has no read() I/O at all, with what it needs instead. */
const NO_READ_IO: Readonly<Record<string, string>> = {
  EINVAL: 'the device has no read() I/O (uvcvideo cameras stream through mmap buffers only)',
  EBADFD: 'the PCM is not set up (ALSA capture needs hw_params ioctls before read())',
};

/** Reads land in a pool of this many reads' size, sliced into the chunks pushed; a new pool once less than one read is left. */
const POOL_READS = 4;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A poller on `fd`, or undefined when the kernel cannot poll it (a regular file or a directory: epoll refuses them). */
function pollerOf(fd: number): Poller | undefined {
  try {
    return new Poller(fd);
  } catch {
    return undefined;
  }
}

/**
 * A capture node (V4L2 with read() I/O, a FIFO fed by a capture tool) as a readable Duplex.
 *
 * The node is opened O_NONBLOCK and read with read(2) on the event loop when its uv_poll says it
 * is readable, only while the consumer wants more (_read): a paused consumer stops the reads and
 * the device (or a FIFO's writer) blocks instead of data piling up here. No read ever waits in
 * libuv's threadpool, so a device that falls silent pins no worker thread, and destroy() stops the
 * poller (uv_poll_stop: the fd leaves epoll at once, not when the Poller is garbage-collected) and
 * closes the fd there and then. A node that cannot be polled (a regular file) never blocks: it is
 * read at once. Writes are refused: capture devices are read-only.
 */
export class CaptureStream extends Duplex {
  bytesRead = 0;
  private readonly poller: Poller | undefined;
  private readWanted = false;
  private armed = false;
  private pool: Buffer;
  private poolUsed = 0;

  private constructor(
    private readonly path: string,
    private readonly fd: number,
    private readonly readSize: number,
    private readonly gone: (error: DeviceError) => void,
  ) {
    super({ readableHighWaterMark: readSize });
    this.pool = Buffer.allocUnsafe(readSize * POOL_READS);
    this.onReadable = this.onReadable.bind(this);
    this.poller = pollerOf(fd);
    this.poller?.on('readable', this.onReadable);
    // End of stream is the device going away, once the consumer has had every byte before it.
    this.once('end', () => {
      this.gone(new DeviceError(`${path}: the device is gone (end of stream)`));
      this.destroy();
    });
  }

  /** Opens `path` read-only and non-blocking (a FIFO opens without waiting for its writer). */
  static async open(path: string, readSize: number, gone: (error: DeviceError) => void): Promise<CaptureStream> {
    const fd = await new Promise<number>((resolve, reject) => {
      fs.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK, (err, opened) => (err ? reject(err) : resolve(opened)));
    }).catch((err: unknown) => {
      throw new DeviceError(`cannot open ${path}: ${errorMessage(err)}`, { cause: err });
    });
    return new CaptureStream(path, fd, readSize, gone);
  }

  override _read(): void {
    this.readWanted = true;
    if (this.poller) this.arm();
    else this.readAvailable();
  }

  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    callback(new UnsupportedError(`${this.path} is a capture device: it is read-only`));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.readWanted = false;
    const poller = this.poller;
    if (poller) {
      poller.off('readable', this.onReadable);
      // Before the close: a uv_poll left on a closed fd would watch whatever file gets its number next.
      poller.stop();
      poller.destroy();
      this.armed = false;
    }
    fs.close(this.fd, () => callback(err));
  }

  /** The native poller disarms after each event (it polls for what else was asked: nothing): arm again while reads are wanted. */
  private arm(): void {
    if (this.armed || this.destroyed) return;
    this.armed = true;
    try {
      this.poller?.poller.poll(EVENTS.UV_READABLE);
    } catch (err) {
      this.fail(err);
    }
  }

  private onReadable(err: Error | null): void {
    this.armed = false;
    if (this.destroyed) return;
    if (err) {
      this.fail(err);
      return;
    }
    this.readAvailable();
    if (this.readWanted) this.arm();
  }

  /** Reads while the consumer wants more and the node has it; a read that fills its room is followed by another. */
  private readAvailable(): void {
    while (this.readWanted && !this.destroyed) {
      if (this.pool.length - this.poolUsed < this.readSize) {
        this.pool = Buffer.allocUnsafe(this.readSize * POOL_READS);
        this.poolUsed = 0;
      }
      const start = this.poolUsed;
      let n: number;
      try {
        n = fs.readSync(this.fd, this.pool, start, this.readSize, null);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'EINTR') continue;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') this.fail(err);
        return;
      }
      if (n === 0) {
        this.readWanted = false;
        this.push(null);
        return;
      }
      this.bytesRead += n;
      this.poolUsed = start + n;
      this.readWanted = this.push(this.pool.subarray(start, start + n));
      if (n < this.readSize) return;
    }
  }

  private fail(err: unknown): void {
    if (this.destroyed) return;
    const hint = NO_READ_IO[codeOf(err) ?? ''];
    const error = new DeviceError(`${this.path}: read failed: ${errorMessage(err)}${hint ? ` (${hint})` : ''}`, { cause: err });
    this.gone(error);
    this.destroy(error);
  }
}
