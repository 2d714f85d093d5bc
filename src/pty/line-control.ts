import { ProtocolError } from '../errors';
import { ModemLine } from '../socket-plane/device-event';

/**
 * The pty's control channel: what a pseudo-terminal cannot carry from the app to the device
 * (BREAK, explicit DTR/RTS, data bits and parity) as one ASCII line per request, e.g.
 * `break 250`, `dtr 0`, `parity even`, `lines`. Each is answered `ok <name> <value in use>` or
 * `error <CODE> <message>`; the device's modem-line changes come unasked as `lines cts,dsr`.
 */
export type ControlRequest =
  | { verb: 'break'; ms: number }
  | { verb: 'dtr' | 'rts'; on: boolean }
  | { verb: 'set'; setting: LineSettingName; value: number }
  | { verb: 'lines' };

export type LineSettingName = 'baudRate' | 'dataBits' | 'parity' | 'stopBits' | 'flowControl';

/** The longest request line taken; a longer one is a protocol error. */
export const MAX_CONTROL_LINE = 128;
export const MAX_BREAK_MS = 10_000;

/** Each setting's words and their RFC 2217 numbers (SerialConfigure's); numeric settings have none. */
const WORDS: Readonly<Record<LineSettingName, Readonly<Record<string, number>> | undefined>> = {
  baudRate: undefined,
  dataBits: undefined,
  parity: { none: 1, odd: 2, even: 3, mark: 4, space: 5 },
  stopBits: { '1': 1, '2': 2, '1.5': 3 },
  flowControl: { none: 1, xonxoff: 2, rtscts: 3 },
};
const RANGES: Readonly<Record<'baudRate' | 'dataBits', readonly [number, number]>> = { baudRate: [50, 4_000_000], dataBits: [5, 8] };
const SETTINGS = Object.keys(WORDS) as LineSettingName[];

function integer(text: string | undefined, min: number, max: number, what: string): number {
  if (text === undefined || !/^\d{1,10}$/.test(text)) throw new ProtocolError(`${what} needs an integer, not ${JSON.stringify(text ?? '')}`);
  const n = Number(text);
  if (n < min || n > max) throw new ProtocolError(`${what} ${n} is out of range (${min} to ${max})`);
  return n;
}

/** Parses one request line (without its newline; a trailing CR is taken off). */
export function parseControlRequest(line: string): ControlRequest {
  if (line.length > MAX_CONTROL_LINE) throw new ProtocolError(`control line of ${line.length} characters (at most ${MAX_CONTROL_LINE})`);
  const words = line.replace(/\r$/, '').trim().split(/\s+/);
  const [verb, arg, extra] = words;
  if (extra !== undefined) throw new ProtocolError(`"${verb}" takes at most one argument`);
  switch (verb) {
    case 'break':
      return { verb, ms: arg === undefined ? 0 : integer(arg, 1, MAX_BREAK_MS, 'break') };
    case 'dtr':
    case 'rts':
      if (arg !== '0' && arg !== '1') throw new ProtocolError(`${verb} needs 0 or 1, not ${JSON.stringify(arg ?? '')}`);
      return { verb, on: arg === '1' };
    case 'lines':
      if (arg !== undefined) throw new ProtocolError('lines takes no argument');
      return { verb };
    default: {
      const setting = SETTINGS.find((s) => s === verb);
      if (!setting) throw new ProtocolError(`unknown request ${JSON.stringify(verb ?? '')} (break, dtr, rts, lines, ${SETTINGS.join(', ')})`);
      return { verb: 'set', setting, value: settingValue(setting, arg) };
    }
  }
}

function settingValue(setting: LineSettingName, arg: string | undefined): number {
  const words = WORDS[setting];
  if (!words) {
    const [min, max] = RANGES[setting as 'baudRate' | 'dataBits'];
    return integer(arg, min, max, setting);
  }
  // Own keys only: "toString" or "constructor" is no setting word.
  const code = arg !== undefined && Object.hasOwn(words, arg) ? words[arg] : undefined;
  if (code === undefined) throw new ProtocolError(`${setting} is one of ${Object.keys(words).join(', ')}, not ${JSON.stringify(arg ?? '')}`);
  return code;
}

/** A setting's value in use as the channel writes it: the word for a numbered one. */
export function settingWord(setting: LineSettingName, value: number): string {
  const words = WORDS[setting];
  if (!words) return String(value);
  return Object.keys(words).find((w) => words[w] === value) ?? String(value);
}

export function encodeControlRequest(r: ControlRequest): string {
  switch (r.verb) {
    case 'break':
      return r.ms === 0 ? 'break' : `break ${r.ms}`;
    case 'dtr':
    case 'rts':
      return `${r.verb} ${r.on ? 1 : 0}`;
    case 'lines':
      return 'lines';
    case 'set':
      return `${r.setting} ${settingWord(r.setting, r.value)}`;
  }
}

/** ModemLine bits as the channel writes them: "cts,dsr", or "none". */
export function lineWords(bits: number): string {
  const names = (Object.keys(ModemLine) as Array<keyof typeof ModemLine>).filter((n) => (bits & ModemLine[n]) !== 0);
  return names.length > 0 ? names.join(',') : 'none';
}
