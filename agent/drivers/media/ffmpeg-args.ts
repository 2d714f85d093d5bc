import { type AudioCaptureSpec, alsaDeviceName, type CaptureSpec, pcmCodec, type VideoCaptureSpec } from './capture-settings';

/**
 * Where ffmpeg takes the pictures and sound from: the device itself (V4L2 / ALSA, the default),
 * or ffmpeg's lavfi test sources (testsrc2 / sine) shaped by the same settings, for machines
 * without capture hardware. The agent's --capture-source flag picks it; bindings cannot.
 */
export type CaptureSource = 'device' | 'lavfi';

/** What a stand-in source makes when a binding leaves a setting unset. */
export const STAND_IN_DEFAULTS = { width: 640, height: 480, fps: 30, rate: 48_000, channels: 2, sampleFormat: 'S16_LE' } as const;

const COMMON = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info'];

/**
 * Live Matroska on stdout, one frame per cluster (a cluster is closed as soon as it holds a
 * block), each packet flushed at once: the framer cuts the stream into whole frames at cluster
 * boundaries, and no frame waits in ffmpeg's buffers.
 */
export const MATROSKA_OUT = ['-f', 'matroska', '-live', '1', '-cluster_time_limit', '0', '-cluster_size_limit', '1', '-flush_packets', '1', 'pipe:1'];

/** Consumers get MJPEG: every frame stands alone, so a slow consumer can lose one and a late one start at any. */
const MJPEG_ENCODE = ['-c:v', 'mjpeg', '-q:v', '5'];

function videoArgs(spec: VideoCaptureSpec, source: CaptureSource): string[] {
  if (source === 'lavfi') {
    const width = spec.width ?? STAND_IN_DEFAULTS.width;
    const height = spec.height ?? STAND_IN_DEFAULTS.height;
    const fps = spec.fps ?? STAND_IN_DEFAULTS.fps;
    return [...COMMON, '-re', '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${fps}`, '-map', '0:v:0', ...MJPEG_ENCODE, ...MATROSKA_OUT];
  }
  const input = ['-f', 'v4l2'];
  if (spec.inputFormat !== undefined) input.push('-input_format', spec.inputFormat);
  if (spec.width !== undefined && spec.height !== undefined) input.push('-video_size', `${spec.width}x${spec.height}`);
  if (spec.fps !== undefined) input.push('-framerate', String(spec.fps));
  // An MJPEG camera's frames go out as they came; any other format is encoded to MJPEG.
  const codec = spec.inputFormat === 'mjpeg' ? ['-c:v', 'copy'] : MJPEG_ENCODE;
  return [...COMMON, ...input, '-i', spec.path, '-map', '0:v:0', ...codec, ...MATROSKA_OUT];
}

function audioArgs(spec: AudioCaptureSpec, source: CaptureSource): string[] {
  if (source === 'lavfi') {
    const rate = spec.rate ?? STAND_IN_DEFAULTS.rate;
    const channels = spec.channels ?? STAND_IN_DEFAULTS.channels;
    const codec = pcmCodec(spec.sampleFormat ?? STAND_IN_DEFAULTS.sampleFormat);
    return [...COMMON, '-re', '-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=${rate}`, '-map', '0:a:0', '-ac', String(channels), '-c:a', codec, ...MATROSKA_OUT];
  }
  const input = ['-f', 'alsa'];
  // ffmpeg's alsa input takes the sample format as the PCM codec named before -i.
  if (spec.sampleFormat !== undefined) input.unshift('-c:a', pcmCodec(spec.sampleFormat));
  if (spec.rate !== undefined) input.push('-sample_rate', String(spec.rate));
  if (spec.channels !== undefined) input.push('-channels', String(spec.channels));
  return [...COMMON, ...input, '-i', alsaDeviceName(spec.path), '-map', '0:a:0', '-c:a', 'copy', ...MATROSKA_OUT];
}

/** The ffmpeg command line (after the program name) that captures `spec` and writes live Matroska to stdout. */
export function ffmpegCaptureArgs(spec: CaptureSpec, source: CaptureSource): string[] {
  return spec.kind === 'video' ? videoArgs(spec, source) : audioArgs(spec, source);
}
