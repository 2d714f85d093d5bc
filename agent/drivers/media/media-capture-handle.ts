import { DeviceError, UnsupportedError } from '../../../src/errors';
import type { CommandReply } from '../../../src/socket-plane/device-command';
import { DeviceEventType, eventTimestamp } from '../../../src/socket-plane/device-event';
import type { DeviceConfig, DeviceEventListener, DeviceHandle } from '../device-driver';
import type { StreamKind } from '../stream-format';
import { captureSettings } from './capture-settings';
import type { CaptureSource } from './ffmpeg-args';
import type { FfmpegCapture } from './ffmpeg-capture';
import type { MediaStreamInfo } from './ffmpeg-report';

/** A stream's report as configuration entries under `prefix`. */
function reported(prefix: string, info: MediaStreamInfo): Record<string, string> {
  const entries: Record<string, string> = { codec: info.codec };
  if (info.type === 'video') {
    Object.assign(entries, { width: String(info.width), height: String(info.height) });
    if (info.fps !== undefined) entries.fps = String(info.fps);
  } else {
    Object.assign(entries, { rate: String(info.rate), channels: String(info.channels), sampleFormat: info.sampleFormat });
  }
  return Object.fromEntries(Object.entries(entries).map(([k, v]) => [`${prefix}.${k}`, v]));
}

/** An open camera or microphone: one ffmpeg capture whose whole frames the agent fans out to the device's sessions. */
export class MediaCaptureHandle implements DeviceHandle {
  private listener: DeviceEventListener | null = null;

  constructor(
    readonly path: string,
    private readonly kind: StreamKind,
    private readonly source: CaptureSource,
    private readonly format: Record<string, string>,
    private readonly specText: string,
    readonly stream: FfmpegCapture,
  ) {
    stream.once('error', (err: Error) => this.report(err.message));
  }

  get frames(): FfmpegCapture {
    return this.stream;
  }

  private report(message: string): void {
    this.listener?.({ type: DeviceEventType.DeviceError, timestampMs: eventTimestamp(), source: 'capture', value: 0, data: Buffer.from(message) });
  }

  onEvent(listener: DeviceEventListener): void {
    this.listener = listener;
  }

  /**
   * A running capture cannot change format under its consumers (their demuxers read the header
   * once): a changed format ends the stream, and the next consumer opens it with the new one.
   */
  async update(config: DeviceConfig): Promise<void> {
    const next = captureSettings(this.kind, this.path, config);
    if (next.method !== 'ffmpeg') throw new UnsupportedError(`${this.path}: the capture method changes only when the device is next opened`);
    if (JSON.stringify(next.spec) === this.specText) return;
    this.stream.destroy(new DeviceError(`${this.path}: the capture format changed; consumers reconnect to get it`));
  }

  execute(): Promise<CommandReply> {
    return Promise.reject(new UnsupportedError(`${this.path}: a capture stream takes no commands`));
  }

  /** The declared settings, what ffmpeg says the device was set up with (readBack.*), and what consumers get (delivered.*). */
  async configuration(): Promise<Record<string, string>> {
    const config: Record<string, string> = { ...this.format, capture: 'ffmpeg', source: this.source, bytesRead: String(this.stream.bytesRead) };
    const report = this.stream.report;
    if (report) Object.assign(config, reported('readBack', report.input), reported('delivered', report.output), { container: 'matroska' });
    return config;
  }

  async close(): Promise<void> {
    this.stream.destroy();
  }
}
