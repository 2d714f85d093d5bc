import { DeviceError, ValidationError } from '../../../src/errors';
import type { DeviceConfig } from '../device-driver';
import { configuredFormat, type StreamKind } from '../stream-format';

/** `ffmpeg` (default): a supervised ffmpeg child drives the device; `read`: read(2) of the node (v4l2loopback, a FIFO fed by a tool). */
export type CaptureMethod = 'ffmpeg' | 'read';

export interface VideoCaptureSpec {
  kind: 'video';
  path: string;
  /** V4L2 pixel format ffmpeg asks for (-input_format): mjpeg, yuyv422, h264 …; unset: the device's current one. */
  inputFormat?: string;
  width?: number;
  height?: number;
  fps?: number;
}

export interface AudioCaptureSpec {
  kind: 'audio';
  path: string;
  rate?: number;
  channels?: number;
  /** ALSA sample format name (S16_LE …), carried by ffmpeg as the PCM codec of `pcmCodec`. */
  sampleFormat?: string;
}

export type CaptureSpec = VideoCaptureSpec | AudioCaptureSpec;

export interface CaptureSettings {
  method: CaptureMethod;
  /** The declared format as strings (configuredFormat), for the endpoint's configuration. */
  format: Record<string, string>;
  spec: CaptureSpec;
}

/**
 * ALSA sample formats ffmpeg's alsa input can capture, by the PCM codec it names them with
 * (libavdevice/alsa.c). S24_LE and S20_3LE (24 or 20 bits in a wider container) have no ffmpeg
 * PCM codec of their own.
 */
const PCM_CODECS: Readonly<Record<string, string>> = {
  S8: 'pcm_s8', U8: 'pcm_u8', S16_LE: 'pcm_s16le', S16_BE: 'pcm_s16be', U16_LE: 'pcm_u16le', U16_BE: 'pcm_u16be',
  S24_3LE: 'pcm_s24le', S24_3BE: 'pcm_s24be', U24_3LE: 'pcm_u24le', U24_3BE: 'pcm_u24be', S32_LE: 'pcm_s32le', S32_BE: 'pcm_s32be',
  U32_LE: 'pcm_u32le', U32_BE: 'pcm_u32be', FLOAT_LE: 'pcm_f32le', FLOAT_BE: 'pcm_f32be', FLOAT64_LE: 'pcm_f64le', FLOAT64_BE: 'pcm_f64be',
  MU_LAW: 'pcm_mulaw', A_LAW: 'pcm_alaw',
};

/** The ffmpeg PCM codec of an ALSA sample format; throws a ValidationError for one ffmpeg cannot capture. */
export function pcmCodec(sampleFormat: string): string {
  const codec = PCM_CODECS[sampleFormat];
  if (!codec) throw new ValidationError('settings.sampleFormat', `${sampleFormat} cannot be captured by ffmpeg (it can: ${Object.keys(PCM_CODECS).join(', ')})`);
  return codec;
}

/** /dev/snd/pcmC1D0c → hw:1,0, the ALSA name of the PCM behind the node. */
export function alsaDeviceName(path: string): string {
  const node = /\/pcmC(\d{1,3})D(\d{1,3})c$/.exec(path);
  if (!node) throw new DeviceError(`${path} is not an ALSA capture node (/dev/snd/pcmC<card>D<device>c); use settings.capture: read for other nodes`);
  return `hw:${node[1]},${node[2]}`;
}

/** Reads a video or audio binding's settings: `capture` plus the format settings of configuredFormat. */
export function captureSettings(kind: StreamKind, path: string, config: DeviceConfig): CaptureSettings {
  const { capture, ...rest } = config.settings;
  if (capture !== undefined && capture !== 'ffmpeg' && capture !== 'read') {
    throw new ValidationError('settings.capture', `"${capture}" is not one of ffmpeg, read`);
  }
  const format = configuredFormat(kind, { ...config, settings: rest });
  const method: CaptureMethod = capture ?? 'ffmpeg';
  const number = (key: string): number | undefined => (format[key] === undefined ? undefined : Number(format[key]));
  if (kind === 'DEVICE_KIND_VIDEO') {
    const width = number('width');
    const height = number('height');
    if (method === 'ffmpeg' && (width === undefined) !== (height === undefined)) {
      throw new ValidationError(width === undefined ? 'settings.width' : 'settings.height', 'width and height are set together (V4L2 sets a frame size)');
    }
    const spec: VideoCaptureSpec = { kind: 'video', path };
    if (format.format !== undefined) spec.inputFormat = format.format;
    if (width !== undefined && height !== undefined) Object.assign(spec, { width, height });
    const fps = number('fps');
    if (fps !== undefined) spec.fps = fps;
    return { method, format, spec };
  }
  const spec: AudioCaptureSpec = { kind: 'audio', path };
  const rate = number('rate');
  const channels = number('channels');
  if (rate !== undefined) spec.rate = rate;
  if (channels !== undefined) spec.channels = channels;
  if (format.sampleFormat !== undefined) {
    if (method === 'ffmpeg') pcmCodec(format.sampleFormat);
    spec.sampleFormat = format.sampleFormat;
  }
  return { method, format, spec };
}
