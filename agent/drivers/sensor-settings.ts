import { ValidationError } from '../../src/errors';
import { DriverSettings } from './driver-settings';
import type { IioChannel } from './iio-sysfs';

export interface SensorThreshold {
  channel: string;
  kind: 'above' | 'below';
  limit: number;
}

export interface SensorSettings {
  /** 0: read on demand only. */
  samplePeriodMs: number;
  /** null: every channel of the device. */
  channels: string[] | null;
  thresholds: SensorThreshold[];
}

/** Below this a sysfs read (often an I2C transfer) takes longer than the period. */
export const MIN_SAMPLE_PERIOD_MS = 10;
const MAX_SAMPLE_PERIOD_MS = 24 * 3600 * 1000;
const THRESHOLD = /^threshold\.([^.]+)\.(above|below)$/;

/** Reads the sensor settings, refusing unknown names and bad values (no device needed). */
export function parseSensorSettings(settings: Readonly<Record<string, string>>): SensorSettings {
  const s = new DriverSettings('sensor', settings);
  s.onlyKnown(['samplePeriodMs', 'channels'], [THRESHOLD]);
  const samplePeriodMs = s.integer('samplePeriodMs', 0, 0, MAX_SAMPLE_PERIOD_MS);
  if (samplePeriodMs > 0 && samplePeriodMs < MIN_SAMPLE_PERIOD_MS) {
    throw new ValidationError('settings.samplePeriodMs', `${samplePeriodMs} is below ${MIN_SAMPLE_PERIOD_MS} ms (0: on demand only)`);
  }
  let channels: string[] | null = null;
  if (settings.channels !== undefined) {
    channels = settings.channels.split(',').map((c) => c.trim());
    if (channels.some((c) => !/^[^,\s.]+$/.test(c))) throw new ValidationError('settings.channels', `"${settings.channels}" is not a comma list of channel names`);
    if (new Set(channels).size !== channels.length) throw new ValidationError('settings.channels', `"${settings.channels}" names a channel twice`);
  }
  const thresholds: SensorThreshold[] = [];
  for (const name of s.names()) {
    const m = THRESHOLD.exec(name);
    if (!m) continue;
    if (channels && !channels.includes(m[1])) throw new ValidationError(`settings.${name}`, `channel "${m[1]}" is not in settings.channels`);
    const text = settings[name];
    const limit = Number(text);
    if (text.trim() === '' || !Number.isFinite(limit)) throw new ValidationError(`settings.${name}`, `"${text}" is not a number (in the channel's unit)`);
    thresholds.push({ channel: m[1], kind: m[2] as 'above' | 'below', limit });
  }
  return { samplePeriodMs, channels, thresholds };
}

/** The device's channels the settings select, refusing names the device does not have. */
export function selectChannels(settings: SensorSettings, available: readonly IioChannel[], device: string): IioChannel[] {
  const known = (name: string, field: string): IioChannel => {
    const ch = available.find((c) => c.name === name);
    if (!ch) throw new ValidationError(field, `${device} has no channel "${name}" (it has ${available.map((c) => c.name).join(', ') || 'none'})`);
    return ch;
  };
  for (const t of settings.thresholds) known(t.channel, `settings.threshold.${t.channel}.${t.kind}`);
  return settings.channels === null ? [...available] : settings.channels.map((name) => known(name, 'settings.channels'));
}
