import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DeviceError } from '../../src/errors';
import { deviceDirectoryEntries } from './device-directory';

/**
 * An IIO device directory as the kernel ABI lays it out (Documentation/ABI/testing/sysfs-bus-iio):
 * `name`, a reading per channel in `in_<channel>_raw` (or the already-scaled `in_<channel>_input`),
 * and `_scale` / `_offset` either per channel or shared by every channel of a type.
 * value = (raw + offset) × scale, in the unit the ABI gives the type.
 */

export interface IioChannel {
  /** The file name between "in_" and "_raw": temp0, accel_x, voltage0-voltage1 … */
  name: string;
  /** The channel type: temp, accel, voltage … */
  type: string;
  unit: string;
  /** The file with the reading. */
  valueFile: string;
  /** `_input`: the driver already applied scale and offset. */
  processed: boolean;
  /** The scale and offset files that apply (per channel before shared), null when there are none. */
  scaleFile: string | null;
  offsetFile: string | null;
  /** Turns the ABI's unit into the reported one (temperature: milli-degrees to degrees). */
  divisor: number;
}

export interface IioDevice {
  dir: string;
  name: string;
  /** The optional `label` file (kernel 5.8+). */
  label: string | null;
  channels: IioChannel[];
}

/** A sysfs file that does not hold what the ABI says it holds. */
export class IioFormatError extends DeviceError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** After scale and offset, per the ABI; types it gives no unit to report ''. */
const UNITS: Record<string, { unit: string; divisor?: number }> = {
  temp: { unit: '°C', divisor: 1000 },
  voltage: { unit: 'mV' },
  altvoltage: { unit: 'mV' },
  current: { unit: 'mA' },
  power: { unit: 'mW' },
  capacitance: { unit: 'nF' },
  resistance: { unit: 'Ω' },
  electricalconductivity: { unit: 'S/m' },
  accel: { unit: 'm/s²' },
  gravity: { unit: 'm/s²' },
  anglvel: { unit: 'rad/s' },
  angl: { unit: 'rad' },
  deltaangl: { unit: 'rad' },
  deltavelocity: { unit: 'm/s' },
  velocity: { unit: 'm/s' },
  phase: { unit: 'rad' },
  incli: { unit: '°' },
  magn: { unit: 'G' },
  pressure: { unit: 'kPa' },
  humidityrelative: { unit: 'm%' },
  positionrelative: { unit: 'm%' },
  concentration: { unit: '%' },
  massconcentration: { unit: 'µg/m³' },
  illuminance: { unit: 'lx' },
  distance: { unit: 'm' },
  ph: { unit: 'pH' },
};

const READING = /^in_(.+)_(raw|input)$/;
/** Derived readings of a channel listed on its own (peak, trough), and multi-value ones. */
const NOT_A_CHANNEL = /(_peak|_trough)$|^rot_quaternion$/;
const NUMBER = /^-?\d+(\.\d+)?$/;

/** The channels a device directory's file names describe (no file is read). */
export function describeChannels(files: readonly string[]): IioChannel[] {
  const present = new Set(files);
  const stems = new Map<string, boolean>();
  for (const file of files) {
    const m = READING.exec(file);
    if (!m || NOT_A_CHANNEL.test(m[1])) continue;
    // A channel with both keeps _raw: scale and offset are then ours to apply, exactly.
    if (m[2] === 'raw' || !stems.has(m[1])) stems.set(m[1], m[2] === 'input');
  }
  const channels: IioChannel[] = [];
  for (const [name, processed] of stems) {
    const t = /^([a-z]+)(\d*)/.exec(name);
    const type = t ? t[1] : name;
    // Per channel first, then shared: by a differential pair's type, by index (voltage0_supply), by type.
    const scopes = name.includes('-') ? [name, `${type}-${type}`, type] : [name, `${type}${t?.[2] ?? ''}`, type];
    const find = (suffix: string): string | null => scopes.map((s) => `in_${s}_${suffix}`).find((f) => present.has(f)) ?? null;
    const unit = UNITS[type] ?? { unit: '' };
    channels.push({
      name,
      type,
      unit: unit.unit,
      valueFile: `in_${name}_${processed ? 'input' : 'raw'}`,
      processed,
      scaleFile: processed ? null : find('scale'),
      offsetFile: processed ? null : find('offset'),
      divisor: unit.divisor ?? 1,
    });
  }
  return channels.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** A number as IIO prints it: an integer or a decimal fraction ("0.000598", "-12"), newline-terminated. */
export function parseIioNumber(text: string, file: string): number {
  const t = text.trim();
  if (t === '') throw new IioFormatError(file, 'is empty');
  if (!NUMBER.test(t)) throw new IioFormatError(file, `${JSON.stringify(t.slice(0, 40))} is not a number`);
  return Number(t);
}

async function readText(dir: string, file: string): Promise<string> {
  try {
    return await fsp.readFile(path.join(dir, file), 'utf8');
  } catch (err) {
    throw new DeviceError(`${path.join(dir, file)}: ${(err as Error).message}`, { cause: err });
  }
}

export async function readIioNumber(dir: string, file: string): Promise<number> {
  return parseIioNumber(await readText(dir, file), path.join(dir, file));
}

/** One reading of a channel in its unit. Scale and offset are read each time: they are writable. */
export async function readChannel(dir: string, channel: IioChannel): Promise<number> {
  const [value, scale, offset] = await Promise.all([
    readIioNumber(dir, channel.valueFile),
    channel.scaleFile === null ? 1 : readIioNumber(dir, channel.scaleFile),
    channel.offsetFile === null ? 0 : readIioNumber(dir, channel.offsetFile),
  ]);
  return ((value + offset) * scale) / channel.divisor;
}

/** Name, label and channels of the device in `dir`. */
export async function readIioDevice(dir: string): Promise<IioDevice> {
  let files: string[];
  try {
    files = await fsp.readdir(dir);
  } catch (err) {
    throw new DeviceError(`${dir}: ${(err as Error).message}`, { cause: err });
  }
  const name = (await readText(dir, 'name')).trim();
  if (name === '') throw new IioFormatError(path.join(dir, 'name'), 'is empty');
  const label = files.includes('label') ? (await readText(dir, 'label')).trim() : null;
  return { dir, name, label, channels: describeChannels(files) };
}

/** Whether the device directory is still there (sysfs removes it when the device goes). */
export async function iioDeviceExists(dir: string): Promise<boolean> {
  try {
    await fsp.access(path.join(dir, 'name'));
    return true;
  } catch {
    return false;
  }
}

/** The iio:deviceN entries of the sysfs IIO directory, in index order; [] when there is none. */
export async function listIioDeviceDirs(root: string): Promise<string[]> {
  // No IIO subsystem (module not loaded): no devices, not a failure.
  return (await deviceDirectoryEntries(root))
    .filter((e) => /^iio:device\d+$/.test(e))
    .sort((a, b) => Number(a.slice(10)) - Number(b.slice(10)))
    .map((e) => path.join(root, e));
}
