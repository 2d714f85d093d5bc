import { DeviceError } from '../../src/errors';

/**
 * Strict parsers of what the libgpiod 1.6 and v2 command-line tools print (gpiodetect, gpioinfo, gpioget
 * and gpiomon's default event format). Anything else is a GpiodOutputError: a tool whose output
 * we misread would drive the wrong pin.
 */

/** Which libgpiod command-line tools are installed: 1 (v1.6, Debian 12) or 2 (v2.x, Debian 13, Ubuntu 24.04). */
export type GpiodGeneration = 1 | 2;

export type GpioDirection = 'input' | 'output';
export type GpioBias = 'as-is' | 'disable' | 'pull-up' | 'pull-down';
export type GpioDrive = 'push-pull' | 'open-drain' | 'open-source';

export interface GpioChipInfo {
  name: string;
  label: string;
  lines: number;
}

export interface GpiodetectResult {
  chips: GpioChipInfo[];
  /** Chips gpiodetect could not open ("gpiochipN Permission denied"). */
  denied: string[];
}

export interface GpioLineInfo {
  offset: number;
  name: string | null;
  used: boolean;
  /** The requester's label; null when unused or held by the kernel without one. */
  consumer: string | null;
  direction: GpioDirection;
  activeLow: boolean;
  /** 'as-is' when gpioinfo shows no bias flag. */
  bias: GpioBias;
  drive: GpioDrive;
}

export interface GpioChipLines {
  name: string;
  lines: GpioLineInfo[];
}

export interface GpioEdgeEvent {
  offset: number;
  rising: boolean;
  /** The kernel's timestamp of the edge. */
  sec: number;
  nsec: number;
}

export class GpiodOutputError extends DeviceError {
  constructor(
    readonly tool: string,
    reason: string,
    readonly text: string,
  ) {
    super(`${tool} printed ${reason}: ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text)}`);
  }
}

/** The lines of a tool's output, which must end with a newline unless it is empty. */
function outputLines(tool: string, out: string): string[] {
  if (out === '') return [];
  if (!out.endsWith('\n')) throw new GpiodOutputError(tool, 'output cut short (no final newline)', out);
  return out.slice(0, -1).split('\n');
}

const DETECT_LINE = /^(\S+) \[(.*)\] \((\d+) lines\)$/;
const DETECT_DENIED = /^(\S+) Permission denied$/;

/** `gpiodetect`: "<name> [<label>] (<n> lines)" per chip. */
export function parseGpiodetect(out: string): GpiodetectResult {
  const result: GpiodetectResult = { chips: [], denied: [] };
  for (const line of outputLines('gpiodetect', out)) {
    const m = DETECT_LINE.exec(line);
    if (m) {
      result.chips.push({ name: m[1], label: m[2], lines: Number(m[3]) });
      continue;
    }
    const d = DETECT_DENIED.exec(line);
    if (!d) throw new GpiodOutputError('gpiodetect', 'a line that is not "<chip> [<label>] (<n> lines)"', line);
    result.denied.push(d[1]);
  }
  return result;
}

const INFO_HEADER = /^(\S+) - (\d+) lines:$/;
/** list_lines() of gpioinfo.c: offset, name, consumer, direction, active state, optional [flags]. */
const INFO_LINE =
  /^\tline +(\d+): +(?:"([^"]*)"|(unnamed)) +(?:"([^"]*)"|(unused)|(kernel)) +(input|output) +(active-high|active-low) (?:\[([a-z -]+)\])?$/;
const FLAGS = new Set(['used', 'open-drain', 'open-source', 'pull-up', 'pull-down', 'bias-disabled']);

function parseInfoLine(text: string, expected: number): GpioLineInfo {
  const m = INFO_LINE.exec(text);
  if (!m) throw new GpiodOutputError('gpioinfo', 'a line that is not a line description', text);
  const offset = Number(m[1]);
  if (offset !== expected) throw new GpiodOutputError('gpioinfo', `line ${offset} where line ${expected} belongs`, text);
  const flags = m[9] === undefined ? [] : m[9].split(' ');
  for (const flag of flags) if (!FLAGS.has(flag)) throw new GpiodOutputError('gpioinfo', `an unknown flag "${flag}"`, text);
  const used = m[5] === undefined;
  if (used !== flags.includes('used')) throw new GpiodOutputError('gpioinfo', 'a consumer that disagrees with the "used" flag', text);
  const bias: GpioBias = flags.includes('pull-up') ? 'pull-up' : flags.includes('pull-down') ? 'pull-down' : flags.includes('bias-disabled') ? 'disable' : 'as-is';
  const drive: GpioDrive = flags.includes('open-drain') ? 'open-drain' : flags.includes('open-source') ? 'open-source' : 'push-pull';
  return {
    offset,
    name: m[2] ?? null,
    used,
    consumer: m[4] ?? null,
    direction: m[7] as GpioDirection,
    activeLow: m[8] === 'active-low',
    bias,
    drive,
  };
}

/**
 * print_line_info() of libgpiod v2's gpioinfo: offset, name (quoted or "unnamed"), then
 * space-separated attributes: direction, "active-low", drive=, bias=, edges=, …, consumer="…".
 */
const INFO_LINE_V2 = /^\tline +(\d+):\t(?:"([^"]*)"|(unnamed)) *\t(input|output)((?: [a-z-]+(?:=[^ "]+|="[^"]*")?)*)$/;
const INFO_ATTR_V2 = / ([a-z-]+)(?:=(?:"([^"]*)"|([^ "]+)))?/g;
const BIAS_V2: Record<string, GpioBias> = { 'pull-up': 'pull-up', 'pull-down': 'pull-down', disabled: 'disable' };
const DRIVE_V2: Record<string, GpioDrive> = { 'open-drain': 'open-drain', 'open-source': 'open-source', 'push-pull': 'push-pull' };

function parseInfoLineV2(text: string, expected: number): GpioLineInfo {
  const m = INFO_LINE_V2.exec(text);
  if (!m) throw new GpiodOutputError('gpioinfo', 'a line that is not a line description', text);
  const offset = Number(m[1]);
  if (offset !== expected) throw new GpiodOutputError('gpioinfo', `line ${offset} where line ${expected} belongs`, text);
  const info: GpioLineInfo = { offset, name: m[2] ?? null, used: false, consumer: null, direction: m[4] as GpioDirection, activeLow: false, bias: 'as-is', drive: 'push-pull' };
  for (const a of m[5].matchAll(INFO_ATTR_V2)) {
    const value = a[2] ?? a[3];
    if (a[1] === 'active-low' && value === undefined) info.activeLow = true;
    else if (a[1] === 'bias' && value !== undefined && value in BIAS_V2) info.bias = BIAS_V2[value];
    else if (a[1] === 'drive' && value !== undefined && value in DRIVE_V2) info.drive = DRIVE_V2[value];
    else if (a[1] === 'consumer' && value !== undefined) {
      info.used = true;
      info.consumer = a[2] === undefined && value === 'kernel' ? null : value;
    } else if (!['edges', 'event-clock', 'debounce-period'].includes(a[1]) || value === undefined) {
      throw new GpiodOutputError('gpioinfo', `an unknown attribute "${a[0].trim()}"`, text);
    }
  }
  return info;
}

/** `gpioinfo [chip …]` (v1.6) or `gpioinfo -c chip` (v2): a "<name> - <n> lines:" header per chip, then exactly n line descriptions. */
export function parseGpioinfo(out: string, generation: GpiodGeneration = 1): GpioChipLines[] {
  const parseLine = generation === 1 ? parseInfoLine : parseInfoLineV2;
  const chips: GpioChipLines[] = [];
  const lines = outputLines('gpioinfo', out);
  let i = 0;
  while (i < lines.length) {
    const h = INFO_HEADER.exec(lines[i]);
    if (!h) throw new GpiodOutputError('gpioinfo', 'a line where a "<chip> - <n> lines:" header belongs', lines[i]);
    const count = Number(h[2]);
    const chip: GpioChipLines = { name: h[1], lines: [] };
    for (let offset = 0; offset < count; offset++) {
      const text = lines[i + 1 + offset];
      if (text === undefined) throw new GpiodOutputError('gpioinfo', `${offset} of the ${count} lines of ${h[1]}`, out);
      chip.lines.push(parseLine(text, offset));
    }
    chips.push(chip);
    i += 1 + count;
  }
  return chips;
}

/** `gpioget chip o1 o2 …`: the values, space-separated, in the order asked. */
export function parseGpiogetValues(out: string, count: number): Array<0 | 1> {
  if (!/^[01]( [01])*\n$/.test(out)) throw new GpiodOutputError('gpioget', 'something other than 0/1 values', out);
  const values = out.trim().split(' ').map((v) => (v === '1' ? 1 : 0));
  if (values.length !== count) throw new GpiodOutputError('gpioget', `${values.length} values for ${count} lines`, out);
  return values;
}

const MON_EVENT = /^event: ( RISING EDGE|FALLING EDGE) offset: (\d+) timestamp: \[ *(\d+)\.(\d{9})\]$/;

/** One line of gpiomon's default format: "event:  RISING EDGE offset: 3 timestamp: [  1234.000000042]". */
export function parseGpiomonEvent(line: string): GpioEdgeEvent {
  const m = MON_EVENT.exec(line);
  if (!m) throw new GpiodOutputError('gpiomon', 'a line that is not an edge event', line);
  return { offset: Number(m[2]), rising: m[1] === ' RISING EDGE', sec: Number(m[3]), nsec: Number(m[4]) };
}

/** What gpiomon v2 prints with `--format='%o %E %S'`: "3 rising 1234.000000042". */
const MON_EVENT_V2 = /^(\d+) (rising|falling) (\d+)\.(\d{9})$/;

export function parseGpiomonEventV2(line: string): GpioEdgeEvent {
  const m = MON_EVENT_V2.exec(line);
  if (!m) throw new GpiodOutputError('gpiomon', 'a line that is not an edge event', line);
  return { offset: Number(m[1]), rising: m[2] === 'rising', sec: Number(m[3]), nsec: Number(m[4]) };
}

const VERSION_LINE = /^\S+ \(libgpiod\) v(\d+)\.\d+/;

/** The first line of `gpiodetect --version`: "gpiodetect (libgpiod) v1.6.3" or "… v2.1.3". */
export function parseGpiodVersion(out: string): GpiodGeneration {
  const m = VERSION_LINE.exec(out);
  if (!m) throw new GpiodOutputError('gpiodetect', 'a version that is not "<tool> (libgpiod) v<major>.<minor>"', out);
  const major = Number(m[1]);
  if (major === 1) return 1;
  if (major === 2) return 2;
  throw new GpiodOutputError('gpiodetect', `libgpiod v${major}, which the GPIO driver does not speak (it speaks v1.6 and v2)`, out);
}
