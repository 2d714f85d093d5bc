import { DeviceError } from '../../../src/errors';

export interface VideoStreamInfo {
  type: 'video';
  codec: string;
  width: number;
  height: number;
  /** Frames per second as ffmpeg reports them ("30 fps", else the "tbr" it guessed); undefined when it says neither. */
  fps: number | undefined;
}

export interface AudioStreamInfo {
  type: 'audio';
  codec: string;
  rate: number;
  channels: number;
  /** ffmpeg's sample format name: s16, s32, flt … */
  sampleFormat: string;
}

export type MediaStreamInfo = VideoStreamInfo | AudioStreamInfo;

/** Channel counts of ffmpeg's named layouts (libavutil/channel_layout.c), variants like "5.1(side)" included by their base. */
const LAYOUT_CHANNELS: Readonly<Record<string, number>> = {
  mono: 1, stereo: 2, '2.1': 3, '3.0': 3, '4.0': 4, quad: 4, '3.1': 4, '5.0': 5, '4.1': 5, '5.1': 6, '6.0': 6, hexagonal: 6,
  '6.1': 7, '7.0': 7, '7.1': 8, octagonal: 8, downmix: 2, hexadecagonal: 16, '22.2': 24,
};

const STREAM_LINE = /^\s*Stream #(\d+):(\d+)(?:\[0x[0-9a-f]+\])?(?:\([A-Za-z]{2,3}\))?: (Video|Audio): (.+)$/;

/** Splits ffmpeg's "a, b(c, d), e [f, g]" at the commas outside brackets. */
function topLevelFields(text: string): string[] {
  const fields: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      fields.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  fields.push(text.slice(start).trim());
  return fields;
}

/** "30", "29.97", "1k" → a number. */
function ffmpegNumber(digits: string, k: string): number {
  return Number(digits) * (k === 'k' ? 1000 : 1);
}

function channelCount(field: string, line: string): number {
  const counted = /^(\d{1,3}) channels(?: \(.*\))?$/.exec(field);
  if (counted) return Number(counted[1]);
  const base = field.replace(/\(.*\)$/, '');
  const n = LAYOUT_CHANNELS[base];
  if (n === undefined) throw new DeviceError(`ffmpeg stream report: "${field}" is not a channel layout in "${line.slice(0, 200)}"`);
  return n;
}

/**
 * Parses one "Stream #0:0: Video: …" or "… Audio: …" line of ffmpeg's stream report; null for a
 * line that is not a video or audio stream line. A stream line without the size (video) or rate,
 * layout and sample format (audio) throws a DeviceError naming it.
 */
export function parseStreamLine(line: string): MediaStreamInfo | null {
  const match = STREAM_LINE.exec(line);
  if (!match) return null;
  const fields = topLevelFields(match[4] as string);
  const codec = /^([a-z0-9_]+)/.exec(fields[0] as string)?.[1];
  const bad = (what: string): DeviceError => new DeviceError(`ffmpeg stream report: no ${what} in "${line.trim().slice(0, 200)}"`);
  if (!codec) throw bad('codec name');
  if (match[3] === 'Video') {
    let size: RegExpExecArray | null = null;
    let fps: number | undefined;
    let tbr: number | undefined;
    for (const field of fields.slice(1)) {
      size ??= /^(\d{1,5})x(\d{1,5})(?: \[.*\])?$/.exec(field);
      const rate = /^(\d+(?:\.\d+)?)(k?) (fps|tbr)$/.exec(field);
      if (rate?.[3] === 'fps') fps = ffmpegNumber(rate[1] as string, rate[2] as string);
      if (rate?.[3] === 'tbr') tbr = ffmpegNumber(rate[1] as string, rate[2] as string);
    }
    if (!size) throw bad('frame size (WxH)');
    const width = Number(size[1]);
    const height = Number(size[2]);
    if (width === 0 || height === 0) throw bad('non-zero frame size');
    return { type: 'video', codec, width, height, fps: fps ?? tbr };
  }
  const hz = fields.findIndex((f) => /^\d{1,7} Hz$/.test(f));
  if (hz < 0) throw bad('sample rate (… Hz)');
  const layout = fields[hz + 1];
  const sampleFormat = fields[hz + 2];
  if (layout === undefined) throw bad('channel layout');
  if (sampleFormat === undefined || !/^[a-z0-9]+p?$/.test(sampleFormat)) throw bad('sample format');
  const rate = Number.parseInt(fields[hz] as string, 10);
  if (rate === 0) throw bad('non-zero sample rate');
  return { type: 'audio', codec, rate, channels: channelCount(layout, line), sampleFormat };
}

/** What ffmpeg opened (the device as it set it up) and what it writes (what consumers get). */
export interface CaptureReport {
  input: MediaStreamInfo;
  output: MediaStreamInfo;
}

/**
 * Follows ffmpeg's stderr line by line: the first stream of "Input #0" and of "Output #0".
 * `line()` returns the report once both are seen; stream lines of the wrong kind or malformed
 * throw a DeviceError.
 */
export class CaptureReportReader {
  private section: 'none' | 'input' | 'output' = 'none';
  private input: MediaStreamInfo | undefined;
  private done = false;

  constructor(private readonly expected: MediaStreamInfo['type']) {}

  line(text: string): CaptureReport | null {
    if (this.done) return null;
    if (/^Input #0, /.test(text)) this.section = 'input';
    else if (/^Output #0, /.test(text)) this.section = 'output';
    else if (/^Stream mapping:/.test(text)) this.section = 'none';
    if (this.section === 'none') return null;
    const stream = parseStreamLine(text);
    if (!stream) return null;
    if (stream.type !== this.expected) throw new DeviceError(`ffmpeg reports a ${stream.type} stream where ${this.expected} was captured: "${text.trim().slice(0, 200)}"`);
    if (this.section === 'input') {
      this.input ??= stream;
      return null;
    }
    if (!this.input) throw new DeviceError('ffmpeg reported its output before its input');
    this.done = true;
    return { input: this.input, output: stream };
  }
}
