import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { Duplex } from 'node:stream';
import { DeviceError, errorMessage, UnsupportedError } from '../../src/errors';
import type { CommandReply } from '../../src/socket-plane/device-command';
import { DeviceEventType, eventTimestamp } from '../../src/socket-plane/device-event';
import { deviceDirectoryEntries } from './device-directory';
import type { DeviceConfig, DeviceDriver, DeviceEventListener, DeviceHandle, DiscoveredDevice } from './device-driver';
import { configuredFormat, probeStream, type StreamKind } from './stream-format';

/** One read(2) asks for this much: a compressed frame or a few audio periods. */
const DEFAULT_READ_SIZE = 64 * 1024;

/** read(2) errors that mean the node has no read() I/O at all, with what it needs instead. */
const NO_READ_IO: Readonly<Record<string, string>> = {
  EINVAL: 'the device has no read() I/O (uvcvideo cameras stream through mmap buffers only)',
  EBADFD: 'the PCM is not set up (ALSA capture needs hw_params ioctls before read())',
};

/**
 * The readable side relays the node's bytes, one read(2) at a time and only while the consumer
 * wants more (_read), so a paused consumer stops the reads and the device (or a FIFO's writer)
 * blocks instead of data piling up here. Writes are refused: capture devices are read-only.
 */
class CaptureStream extends Duplex {
  bytesRead = 0;
  private reading = false;
  /** Reads go here, one at a time; each chunk is pushed as a copy of its size, so short reads do not pin a whole buffer each. */
  private readonly buffer: Buffer;

  constructor(
    private readonly path: string,
    private readonly file: FileHandle,
    readSize: number,
    private readonly gone: (error: DeviceError) => void,
  ) {
    super({ readableHighWaterMark: readSize });
    this.buffer = Buffer.allocUnsafe(readSize);
    // End of stream is the device going away, once the consumer has had every byte before it.
    this.once('end', () => {
      this.gone(new DeviceError(`${path}: the device is gone (end of stream)`));
      this.destroy();
    });
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    this.file.read(this.buffer, 0, this.buffer.length, null).then(
      ({ bytesRead }) => {
        this.reading = false;
        if (this.destroyed) return;
        this.bytesRead += bytesRead;
        this.push(bytesRead === 0 ? null : Buffer.from(this.buffer.subarray(0, bytesRead)));
      },
      (err: NodeJS.ErrnoException) => {
        this.reading = false;
        if (this.destroyed) return;
        const hint = NO_READ_IO[err.code ?? ''];
        const error = new DeviceError(`${this.path}: read failed: ${errorMessage(err)}${hint ? ` (${hint})` : ''}`, { cause: err });
        this.gone(error);
        this.destroy(error);
      },
    );
  }

  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    callback(new UnsupportedError(`${this.path} is a capture device: it is read-only`));
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // FileHandle.close() waits for a read in flight, which a device that stopped producing (or a
    // FIFO's silent writer) may never end: release the fd when it does, without holding this up.
    void this.file.close().catch(() => undefined);
    callback(err);
  }
}

export interface StreamDriverOptions {
  kind: StreamKind;
  /** Where device nodes are (video*, snd/pcmC*D*c); tests use a temporary directory. */
  devRoot?: string;
  sysRoot?: string;
  procRoot?: string;
  readSize?: number;
}

/**
 * Video (V4L2 /dev/videoN) and audio capture (ALSA /dev/snd/pcmCxDyc) as byte streams read with
 * read(2). That works for nodes that deliver data on read(): V4L2 drivers with read() I/O
 * (v4l2loopback, many capture cards), FIFOs fed by a capture tool. uvcvideo cameras and raw ALSA
 * PCM nodes need ioctls and mmap first; their first read fails with a DeviceError that says so.
 */
export class StreamDriver implements DeviceDriver {
  readonly kind: StreamKind;
  private readonly devRoot: string;
  private readonly roots: { sysRoot: string; procRoot: string };
  private readonly readSize: number;

  constructor(options: StreamDriverOptions) {
    this.kind = options.kind;
    this.devRoot = options.devRoot ?? '/dev';
    this.roots = { sysRoot: options.sysRoot ?? '/sys', procRoot: options.procRoot ?? '/proc' };
    this.readSize = options.readSize ?? DEFAULT_READ_SIZE;
  }

  validate(config: DeviceConfig): void {
    configuredFormat(this.kind, config);
  }

  async open(path: string, config: DeviceConfig): Promise<DeviceHandle> {
    const format = configuredFormat(this.kind, config);
    let file: FileHandle;
    try {
      file = await fs.promises.open(path, fs.constants.O_RDONLY);
    } catch (err) {
      throw new DeviceError(`cannot open ${path}: ${errorMessage(err)}`, { cause: err });
    }
    const probe = (): Promise<Record<string, string>> => probeStream(this.kind, nodePath.basename(path), this.roots);
    return new StreamHandle(path, this.kind, format, probe, file, this.readSize);
  }

  /**
   * The capture nodes under devRoot. Capabilities hold only what the kernel reported: a video
   * node's sysfs name says nothing of its formats (that is VIDIOC_ENUM_FMT, an ioctl); an audio
   * node's hw_params tell the format of a capture running now, if any.
   */
  async list(): Promise<DiscoveredDevice[]> {
    const video = this.kind === 'DEVICE_KIND_VIDEO';
    const dir = video ? this.devRoot : `${this.devRoot}/snd`;
    const names = await deviceDirectoryEntries(dir);
    const pattern = video ? /^video\d+$/ : /^pcmC\d+D\d+c$/;
    const nodes = names.filter((n) => pattern.test(n)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    return Promise.all(
      nodes.map(async (node) => {
        const labels = await probeStream(this.kind, node, this.roots);
        const capabilities = ['stream', 'read-only'];
        for (const key of ['format', 'rate', 'channels']) if (labels[key] !== undefined) capabilities.push(`${key}=${labels[key]}`);
        return { path: `${dir}/${node}`, kind: this.kind, capabilities, labels };
      }),
    );
  }
}

class StreamHandle implements DeviceHandle {
  readonly stream: CaptureStream;
  private listener: DeviceEventListener | null = null;

  constructor(
    readonly path: string,
    private readonly kind: StreamKind,
    private format: Record<string, string>,
    private readonly probe: () => Promise<Record<string, string>>,
    file: FileHandle,
    readSize: number,
  ) {
    this.stream = new CaptureStream(path, file, readSize, (error) => this.report(error));
  }

  private report(error: DeviceError): void {
    const data = Buffer.from(error.message);
    this.listener?.({ type: DeviceEventType.DeviceError, timestampMs: eventTimestamp(), source: 'stream', value: 0, data });
  }

  onEvent(listener: DeviceEventListener): void {
    this.listener = listener;
  }

  async update(config: DeviceConfig): Promise<void> {
    this.format = configuredFormat(this.kind, config);
  }

  execute(): Promise<CommandReply> {
    return Promise.reject(new UnsupportedError(`${this.path}: a capture stream takes no commands`));
  }

  /** The declared format as set, what the kernel reports now under "probed.", and the bytes relayed. */
  async configuration(): Promise<Record<string, string>> {
    const config: Record<string, string> = { ...this.format, bytesRead: String(this.stream.bytesRead) };
    for (const [key, value] of Object.entries(await this.probe())) config[`probed.${key}`] = value;
    return config;
  }

  async close(): Promise<void> {
    this.stream.destroy();
  }
}
