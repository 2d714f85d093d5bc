import { ValidationError } from '../../src/errors';
import { DriverSettings } from './driver-settings';
import type { GpioBias, GpioDirection, GpioLineInfo } from './gpiod-output';

export type GpioEdgeSetting = 'rising' | 'falling' | 'both' | 'none';

export interface GpioLineSettings {
  direction: GpioDirection;
  edge: GpioEdgeSetting;
  bias: GpioBias;
  /** The value an output starts with. */
  initial: 0 | 1;
  activeLow: boolean;
}

/** The settings as written: line tokens (offsets or names) not yet matched to the chip. */
export interface GpioSettings {
  /** null: every line of the chip nobody else uses. */
  lines: string[] | null;
  perLine: Map<string, Partial<GpioLineSettings>>;
}

/** A line of the mapping, matched to the chip. */
export interface GpioLinePlan extends GpioLineSettings {
  offset: number;
  /** How events and configuration name it: the token of `lines`, else its name, else its offset. */
  label: string;
}

const PER_LINE = ['direction', 'edge', 'bias', 'initial', 'activeLow'] as const;
const PER_LINE_PATTERN = /^(direction|edge|bias|initial|activeLow)\.([^.]+)$/;
const DEFAULTS: GpioLineSettings = { direction: 'input', edge: 'none', bias: 'as-is', initial: 0, activeLow: false };
const TOKEN = /^[^,\s]+$/;

/** Reads the GPIO settings, refusing unknown names and bad values (no chip needed). */
export function parseGpioSettings(settings: Readonly<Record<string, string>>): GpioSettings {
  const s = new DriverSettings('gpio', settings);
  s.onlyKnown(['lines'], PER_LINE.map((p) => new RegExp(`^${p}\\.[^.]+$`)));
  let lines: string[] | null = null;
  if (settings.lines !== undefined) {
    lines = settings.lines.split(',').map((t) => t.trim());
    if (lines.some((t) => !TOKEN.test(t))) throw new ValidationError('settings.lines', `"${settings.lines}" is not a comma list of line offsets or names`);
    if (new Set(lines).size !== lines.length) throw new ValidationError('settings.lines', `"${settings.lines}" names a line twice`);
  }
  const perLine = new Map<string, Partial<GpioLineSettings>>();
  for (const name of s.names()) {
    const m = PER_LINE_PATTERN.exec(name);
    if (!m) continue;
    const token = m[2];
    if (lines && !lines.includes(token)) throw new ValidationError(`settings.${name}`, `line "${token}" is not in settings.lines`);
    const entry = perLine.get(token) ?? {};
    if (m[1] === 'direction') entry.direction = s.oneOf(name, ['input', 'output'] as const, 'input');
    if (m[1] === 'edge') entry.edge = s.oneOf(name, ['rising', 'falling', 'both', 'none'] as const, 'none');
    if (m[1] === 'bias') entry.bias = s.oneOf(name, ['as-is', 'disable', 'pull-up', 'pull-down'] as const, 'as-is');
    if (m[1] === 'initial') entry.initial = s.oneOf(name, ['0', '1'] as const, '0') === '1' ? 1 : 0;
    if (m[1] === 'activeLow') entry.activeLow = s.boolean(name, false);
    perLine.set(token, entry);
  }
  for (const [token, entry] of perLine) checkLine(token, { ...DEFAULTS, ...entry }, entry);
  const edgeBiases = new Set([...perLine.values()].filter((e) => (e.edge ?? 'none') !== 'none').map((e) => e.bias ?? 'as-is'));
  if (edgeBiases.size > 1) {
    throw new ValidationError('settings.bias', `lines with edge detection share one gpiomon, which takes one bias for all of them (got ${[...edgeBiases].join(', ')})`);
  }
  return { lines, perLine };
}

function checkLine(token: string, line: GpioLineSettings, given: Partial<GpioLineSettings>): void {
  if (line.edge !== 'none' && line.direction === 'output') {
    throw new ValidationError(`settings.edge.${token}`, 'edge detection needs an input line (direction is output)');
  }
  if (given.initial !== undefined && line.direction !== 'output') {
    throw new ValidationError(`settings.initial.${token}`, 'an initial value needs an output line (set direction to output)');
  }
}

/**
 * Matches the settings to the chip's lines (gpioinfo). `ours`: offsets this device already holds,
 * which do not count as used by someone else.
 */
export function planGpioLines(settings: GpioSettings, chipLines: readonly GpioLineInfo[], ours: ReadonlySet<number>): GpioLinePlan[] {
  const names = new Map<string, number[]>();
  for (const l of chipLines) if (l.name !== null) names.set(l.name, [...(names.get(l.name) ?? []), l.offset]);
  const resolve = (token: string, field: string): number => {
    if (/^\d+$/.test(token)) {
      const offset = Number(token);
      if (offset >= chipLines.length) throw new ValidationError(field, `the chip has no line ${offset} (it has ${chipLines.length})`);
      return offset;
    }
    const found = names.get(token);
    if (!found) throw new ValidationError(field, `the chip has no line named "${token}"`);
    if (found.length > 1) throw new ValidationError(field, `the chip has ${found.length} lines named "${token}" (offsets ${found.join(', ')}): use an offset`);
    return found[0];
  };
  const foreign = (l: GpioLineInfo): boolean => l.used && !ours.has(l.offset);
  const labels = new Map<number, string>();
  if (settings.lines) {
    for (const token of settings.lines) {
      const offset = resolve(token, 'settings.lines');
      if (labels.has(offset)) throw new ValidationError('settings.lines', `"${token}" and "${labels.get(offset)}" are the same line`);
      const l = chipLines[offset];
      if (foreign(l)) throw new ValidationError('settings.lines', `line ${token} is used by ${l.consumer === null ? 'the kernel' : `"${l.consumer}"`}`);
      labels.set(offset, token);
    }
  } else {
    for (const l of chipLines) {
      if (!foreign(l)) labels.set(l.offset, l.name !== null && names.get(l.name)?.length === 1 ? l.name : String(l.offset));
    }
  }
  const given = new Map<number, { token: string; entry: Partial<GpioLineSettings> }>();
  for (const [token, entry] of settings.perLine) {
    const field = `settings.${Object.keys(entry)[0]}.${token}`;
    const offset = resolve(token, field);
    if (!labels.has(offset)) throw new ValidationError(field, `line ${token} is not one this mapping can use`);
    const other = given.get(offset);
    if (other) throw new ValidationError(field, `"${token}" and "${other.token}" are the same line: configure it once`);
    given.set(offset, { token, entry });
  }
  return [...labels].map(([offset, label]) => ({ ...DEFAULTS, ...given.get(offset)?.entry, offset, label }));
}
