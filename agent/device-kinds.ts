import * as path from 'node:path';
import { ValidationError } from '../src/errors';
import type { DeviceKind } from '../src/proto/types';

/** The words a `--watch` spec may start with, and the kind each names. */
export const KIND_WORDS: Readonly<Record<string, DeviceKind>> = Object.freeze({
  serial: 'DEVICE_KIND_SERIAL',
  hid: 'DEVICE_KIND_HID',
  gpio: 'DEVICE_KIND_GPIO',
  sensor: 'DEVICE_KIND_SENSOR',
  lab: 'DEVICE_KIND_LAB_CARD',
  video: 'DEVICE_KIND_VIDEO',
  audio: 'DEVICE_KIND_AUDIO',
});

/** The `--watch` word of a kind ("serial", "hid" …), also the capability of a device its driver did not describe. */
export function kindWord(kind: DeviceKind): string {
  const word = Object.keys(KIND_WORDS).find((w) => KIND_WORDS[w] === kind);
  if (word === undefined) throw new ValidationError('kind', `${kind} is not a kind of device the agent watches`);
  return word;
}

/** A `--watch` glob split into its literal directory and the pattern of the last segment. */
export interface CompiledGlob {
  glob: string;
  dir: string;
  pattern: RegExp;
}

/** Compiles a glob whose wildcards ('*', '?') are all in its last path segment. */
export function compileGlob(glob: string): CompiledGlob {
  if (!glob) throw new ValidationError('--watch', 'an empty glob names no file');
  const absolute = path.resolve(glob);
  const dir = path.dirname(absolute);
  const base = path.basename(absolute);
  if (/[*?]/.test(dir)) throw new ValidationError('--watch', `"${glob}": wildcards are only allowed in the last path segment`);
  if (!base) throw new ValidationError('--watch', `"${glob}" names no file`);
  const source = base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return { glob, dir, pattern: new RegExp(`^${source}$`) };
}

/** One parsed `--watch` spec: what it said, the kind of device it finds, and where. */
export interface WatchSpec {
  spec: string;
  kind: DeviceKind;
  glob: CompiledGlob;
}

/** Kernel device names by kind; anything else is taken for a serial port. */
const INFERRED: ReadonlyArray<{ test: (glob: CompiledGlob) => boolean; kind: DeviceKind }> = [
  { test: (g) => path.basename(g.glob).startsWith('hidraw'), kind: 'DEVICE_KIND_HID' },
  { test: (g) => path.basename(g.glob).startsWith('gpiochip'), kind: 'DEVICE_KIND_GPIO' },
  { test: (g) => path.basename(g.glob).startsWith('iio:device'), kind: 'DEVICE_KIND_SENSOR' },
  { test: (g) => path.basename(g.glob).startsWith('usbtmc'), kind: 'DEVICE_KIND_LAB_CARD' },
  { test: (g) => path.basename(g.glob).startsWith('video'), kind: 'DEVICE_KIND_VIDEO' },
  // "pcm" alone is too common a prefix to mean ALSA outside its /dev/snd directory.
  { test: (g) => path.basename(g.dir) === 'snd' && path.basename(g.glob).startsWith('pcm'), kind: 'DEVICE_KIND_AUDIO' },
];

/**
 * Parses `[kind:]GLOB`. A prefix is a kind only when it is one of KIND_WORDS, since a glob may
 * hold a colon itself (`/sys/bus/iio/devices/iio:device*`); a word followed by an absolute path
 * that is not a kind word is refused as a misspelt kind rather than read as a relative glob.
 * Without a kind, the kind is inferred from the device name (see INFERRED).
 */
export function parseWatchSpec(spec: string): WatchSpec {
  const colon = spec.indexOf(':');
  const prefix = colon > 0 ? spec.slice(0, colon) : '';
  const rest = spec.slice(colon + 1);
  if (prefix && Object.hasOwn(KIND_WORDS, prefix)) {
    if (!rest) throw new ValidationError('--watch', `"${spec}" has a kind but no glob`);
    return { spec, kind: KIND_WORDS[prefix] as DeviceKind, glob: compileGlob(rest) };
  }
  if (/^[a-z]+$/i.test(prefix) && rest.startsWith('/')) {
    throw new ValidationError('--watch', `"${spec}": unknown kind "${prefix}" (one of ${Object.keys(KIND_WORDS).join(', ')})`);
  }
  const glob = compileGlob(spec);
  return { spec, kind: INFERRED.find((i) => i.test(glob))?.kind ?? 'DEVICE_KIND_SERIAL', glob };
}
