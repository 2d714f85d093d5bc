import * as fs from 'node:fs';
import { DeviceError, errorMessage, ValidationError } from '../../src/errors';
import type { DeviceConfig } from './device-driver';
import { DriverSettings } from './driver-settings';

export type StreamKind = 'DEVICE_KIND_VIDEO' | 'DEVICE_KIND_AUDIO';

/** V4L2 keeps a node's name in char[32]: at most 31 characters. */
const V4L2_NAME_MAX = 31;
const CONTROL = /[\x00-\x1f\x7f]/;

/** Parses /sys/class/video4linux/videoN/name: one line, the driver's name of the node. */
export function parseV4l2Name(text: string, file: string): string {
  const line = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (line.length === 0) throw new DeviceError(`${file}: empty name`);
  if (CONTROL.test(line)) throw new DeviceError(`${file}: the name is not one line of text`);
  if (line.length > V4L2_NAME_MAX) {
    throw new DeviceError(`${file}: a name of ${line.length} characters (V4L2 names have at most ${V4L2_NAME_MAX})`);
  }
  return line;
}

/** Lines of "key: value" as ALSA's proc files print them; a repeated key or a line of another form is refused. */
function parseKeyValues(text: string, file: string): Map<string, string> {
  const values = new Map<string, string>();
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw new DeviceError(`${file}: empty`);
  for (const line of lines) {
    const match = /^([A-Za-z][A-Za-z0-9_ ]*): ?(.*)$/.exec(line);
    if (!match || CONTROL.test(match[2])) throw new DeviceError(`${file}: "${line.slice(0, 80)}" is not a "key: value" line`);
    if (values.has(match[1])) throw new DeviceError(`${file}: ${match[1]} appears twice`);
    values.set(match[1], match[2]);
  }
  return values;
}

function required(values: Map<string, string>, key: string, file: string): string {
  const value = values.get(key);
  if (value === undefined) throw new DeviceError(`${file}: no ${key}`);
  return value;
}

function count(values: Map<string, string>, key: string, file: string): number {
  const text = required(values, key, file);
  if (!/^\d{1,10}$/.test(text)) throw new DeviceError(`${file}: ${key} "${text}" is not a whole number`);
  return Number(text);
}

export interface PcmInfo {
  card: number;
  device: number;
  stream: 'CAPTURE' | 'PLAYBACK';
  id: string;
  name: string;
  subname: string;
}

/** Parses /proc/asound/cardN/pcmMc/info (sound/core/pcm.c, snd_pcm_proc_info_read). */
export function parsePcmInfo(text: string, file: string): PcmInfo {
  const failed = /^error (-?\d+)\n?$/.exec(text);
  if (failed) throw new DeviceError(`${file}: the kernel could not describe the PCM (error ${failed[1]})`);
  const values = parseKeyValues(text, file);
  const stream = required(values, 'stream', file);
  if (stream !== 'CAPTURE' && stream !== 'PLAYBACK') throw new DeviceError(`${file}: stream "${stream}" is neither CAPTURE nor PLAYBACK`);
  return {
    card: count(values, 'card', file),
    device: count(values, 'device', file),
    stream,
    id: required(values, 'id', file),
    name: required(values, 'name', file),
    subname: values.get('subname') ?? '',
  };
}

export interface HwParams {
  access: string;
  format: string;
  channels: number;
  rate: number;
  periodSize: number;
  bufferSize: number;
}

/**
 * Parses /proc/asound/cardN/pcmMc/subK/hw_params: the format a running substream was set up with,
 * or null while it is "closed" or has "no setup" (nobody is capturing).
 */
export function parseHwParams(text: string, file: string): HwParams | null {
  if (text === 'closed\n' || text === 'no setup\n') return null;
  const values = parseKeyValues(text, file);
  const rate = /^(\d{1,7}) \((\d+)\/(\d+)\)$/.exec(required(values, 'rate', file));
  if (!rate) throw new DeviceError(`${file}: rate "${values.get('rate')}" is not "<hz> (<num>/<den>)"`);
  const format = required(values, 'format', file);
  if (!/^[A-Z0-9_]+$/.test(format)) throw new DeviceError(`${file}: format "${format}" is not an ALSA sample format name`);
  const channels = count(values, 'channels', file);
  if (channels === 0) throw new DeviceError(`${file}: 0 channels`);
  return {
    access: required(values, 'access', file),
    format,
    channels,
    rate: Number(rate[1]),
    periodSize: count(values, 'period_size', file),
    bufferSize: count(values, 'buffer_size', file),
  };
}

/** A file's text, or undefined when it does not exist (the driver or kernel has no such entry). */
async function readIfThere(file: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DeviceError(`cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/** What the kernel says about a node, as labels; empty when the node is not one it describes (a FIFO, say). */
export async function probeStream(
  kind: StreamKind,
  node: string,
  roots: { sysRoot: string; procRoot: string },
): Promise<Record<string, string>> {
  const probed: Record<string, string> = {};
  if (kind === 'DEVICE_KIND_VIDEO') {
    const video = /^video\d+$/.exec(node);
    const file = `${roots.sysRoot}/class/video4linux/${node}/name`;
    const text = video ? await readIfThere(file) : undefined;
    if (text !== undefined) probed.name = parseV4l2Name(text, file);
    return probed;
  }
  const pcm = /^pcmC(\d+)D(\d+)c$/.exec(node);
  if (!pcm) return probed;
  const dir = `${roots.procRoot}/asound/card${pcm[1]}/pcm${pcm[2]}c`;
  const info = await readIfThere(`${dir}/info`);
  if (info !== undefined) {
    const { card, device, id, name, subname } = parsePcmInfo(info, `${dir}/info`);
    Object.assign(probed, { card: String(card), device: String(device), id, name, subname });
  }
  const params = await readIfThere(`${dir}/sub0/hw_params`);
  const hw = params === undefined ? null : parseHwParams(params, `${dir}/sub0/hw_params`);
  if (hw) Object.assign(probed, { format: hw.format, rate: String(hw.rate), channels: String(hw.channels), access: hw.access });
  return probed;
}

const ALSA_SAMPLE_FORMATS = [
  'S8', 'U8', 'S16_LE', 'S16_BE', 'U16_LE', 'U16_BE', 'S24_LE', 'S24_BE', 'U24_LE', 'U24_BE', 'S32_LE', 'S32_BE', 'U32_LE', 'U32_BE',
  'FLOAT_LE', 'FLOAT_BE', 'FLOAT64_LE', 'FLOAT64_BE', 'MU_LAW', 'A_LAW', 'S24_3LE', 'S24_3BE', 'U24_3LE', 'U24_3BE', 'S20_3LE', 'S20_3BE',
] as const;

/**
 * The format a binding declares for the stream (settings), as strings: the driver reads bytes and
 * cannot set a device's format (that takes V4L2/ALSA ioctls), so this is what consumers are told
 * to expect, reported as configured, next to what the kernel reports (probeStream).
 */
export function configuredFormat(kind: StreamKind, config: DeviceConfig): Record<string, string> {
  const video = kind === 'DEVICE_KIND_VIDEO';
  const settings = new DriverSettings(video ? 'video' : 'audio', config.settings);
  settings.onlyKnown(video ? ['format', 'width', 'height', 'fps'] : ['format', 'rate', 'channels', 'sampleFormat']);
  const format: Record<string, string> = {};
  const name = config.settings.format;
  if (name !== undefined) {
    if (!/^[a-z0-9_]{1,16}$/.test(name)) {
      throw new ValidationError('settings.format', `"${name}" is not a format name (lower-case letters, digits, _: mjpeg, h264, pcm …)`);
    }
    format.format = name;
  }
  const put = (key: string, value: number): void => {
    if (config.settings[key] !== undefined) format[key] = String(value);
  };
  if (video) {
    put('width', settings.integer('width', 0, 1, 16384));
    put('height', settings.integer('height', 0, 1, 16384));
    put('fps', settings.number('fps', 0, 0.001, 1000));
  } else {
    put('rate', settings.integer('rate', 0, 1000, 768_000));
    put('channels', settings.integer('channels', 0, 1, 64));
    const sampleFormat = settings.oneOf<string>('sampleFormat', ALSA_SAMPLE_FORMATS, '');
    if (sampleFormat) format.sampleFormat = sampleFormat;
  }
  return format;
}
