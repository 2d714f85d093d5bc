import * as nodePath from 'node:path';
import { DeviceError, UnsupportedError } from '../../src/errors';
import type { CommandReply } from '../../src/socket-plane/device-command';
import { DeviceEventType, eventTimestamp } from '../../src/socket-plane/device-event';
import { CaptureStream } from './capture-stream';
import { deviceDirectoryEntries } from './device-directory';
import type { DeviceConfig, DeviceDriver, DeviceEventListener, DeviceHandle, DiscoveredDevice } from './device-driver';
import { configuredFormat, probeStream, type StreamKind } from './stream-format';

/** One read(2) asks for this much: a compressed frame or a few audio periods. */
const DEFAULT_READ_SIZE = 64 * 1024;

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
    const probe = (): Promise<Record<string, string>> => probeStream(this.kind, nodePath.basename(path), this.roots);
    const handle = new StreamHandle(path, this.kind, format, probe);
    await handle.open(this.readSize);
    return handle;
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
  private capture: CaptureStream | undefined;
  private listener: DeviceEventListener | null = null;

  constructor(
    readonly path: string,
    private readonly kind: StreamKind,
    private format: Record<string, string>,
    private readonly probe: () => Promise<Record<string, string>>,
  ) {}

  async open(readSize: number): Promise<void> {
    this.capture = await CaptureStream.open(this.path, readSize, (error) => this.report(error));
  }

  get stream(): CaptureStream {
    if (!this.capture) throw new DeviceError(`${this.path}: the capture stream is not open`);
    return this.capture;
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
