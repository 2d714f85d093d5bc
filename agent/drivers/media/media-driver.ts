import type { DeviceConfig, DeviceDriver, DeviceHandle, DiscoveredDevice } from '../device-driver';
import { StreamDriver } from '../stream-driver';
import type { StreamKind } from '../stream-format';
import { captureSettings } from './capture-settings';
import { type CaptureSource, ffmpegCaptureArgs } from './ffmpeg-args';
import { FfmpegCapture } from './ffmpeg-capture';
import { MediaCaptureHandle } from './media-capture-handle';

export interface MediaDriverOptions {
  kind: StreamKind;
  /** Default 'device': V4L2 / ALSA. 'lavfi' only where there is no capture hardware (tests, benches, demos). */
  source?: CaptureSource;
  /** The ffmpeg program; default `ffmpeg` on PATH. */
  ffmpeg?: string;
  /** Lists nodes and opens those of `settings.capture: read`; default a StreamDriver of the kind. */
  nodes?: StreamDriver;
}

/**
 * Cameras (V4L2) and microphones (ALSA) captured by one supervised ffmpeg child per open
 * device, which sets the binding's format on the device (-input_format, -video_size,
 * -framerate; sample rate, channels, sample format) and reports what it got; consumers receive
 * live Matroska (MJPEG video, PCM audio). `settings.capture: read` keeps the read(2) byte
 * stream of StreamDriver for nodes that have read() I/O.
 */
export class MediaDriver implements DeviceDriver {
  readonly kind: StreamKind;
  private readonly source: CaptureSource;
  private readonly ffmpeg: string;
  private readonly nodes: StreamDriver;

  constructor(options: MediaDriverOptions) {
    this.kind = options.kind;
    this.source = options.source ?? 'device';
    this.ffmpeg = options.ffmpeg ?? 'ffmpeg';
    this.nodes = options.nodes ?? new StreamDriver({ kind: options.kind });
  }

  validate(config: DeviceConfig): void {
    captureSettings(this.kind, '', config);
  }

  async open(path: string, config: DeviceConfig): Promise<DeviceHandle> {
    const settings = captureSettings(this.kind, path, config);
    if (settings.method === 'read') {
      const { capture: _method, ...rest } = config.settings;
      return this.nodes.open(path, { ...config, settings: rest });
    }
    const args = ffmpegCaptureArgs(settings.spec, this.source);
    const stream = new FfmpegCapture({ path, ffmpeg: this.ffmpeg, args, expected: settings.spec.kind });
    await stream.start();
    return new MediaCaptureHandle(path, this.kind, this.source, settings.format, JSON.stringify(settings.spec), stream);
  }

  list(): Promise<DiscoveredDevice[]> {
    return this.nodes.list();
  }
}
