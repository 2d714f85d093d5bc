import * as path from 'node:path';
import { DeviceError, UnsupportedError, ValidationError } from '../../src/errors';
import type { DeviceKind } from '../../src/proto/types';
import { type CommandReply, CommandOp, type DeviceCommand } from '../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType, eventTimestamp } from '../../src/socket-plane/device-event';
import { ByteLessStream } from './byte-less-stream';
import type { DeviceConfig, DeviceDriver, DeviceEventListener, DeviceHandle, DiscoveredDevice } from './device-driver';
import { type IioChannel, iioDeviceExists, listIioDeviceDirs, readChannel, readIioDevice } from './iio-sysfs';
import { parseSensorSettings, type SensorSettings, type SensorThreshold, selectChannels } from './sensor-settings';

export const IIO_SYSFS_ROOT = '/sys/bus/iio/devices';

export interface SensorDriverOptions {
  /** Where the iio:deviceN directories are; default /sys/bus/iio/devices. */
  sysfsRoot?: string;
}

interface OpenChannel {
  channel: IioChannel;
  /** The unit's name, once, for every sample's data. */
  unit: Buffer;
}

/**
 * An open IIO device. One timer samples every selected channel (a tick is skipped while the
 * previous reading is still running); thresholds fire on crossing, not on every sample beyond.
 */
class SensorHandle implements DeviceHandle {
  readonly stream: ByteLessStream;
  private channels: OpenChannel[] = [];
  private settings: SensorSettings = { samplePeriodMs: 0, channels: null, thresholds: [] };
  /** Per "<channel>:<above|below>": whether the last reading was beyond the limit. */
  private beyond = new Map<string, boolean>();
  private timer: NodeJS.Timeout | null = null;
  private reading = false;
  /** The last read failure reported, so a failing channel is reported once, not every tick. */
  private lastFailure: string | null = null;
  private listener: DeviceEventListener | null = null;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly name: string,
  ) {
    this.stream = new ByteLessStream(`sensor ${path}`);
  }

  onEvent(listener: DeviceEventListener): void {
    this.listener = listener;
  }

  async update(config: DeviceConfig): Promise<void> {
    if (this.closed) throw new DeviceError(`${this.path} is closed`);
    const settings = parseSensorSettings(config.settings);
    const device = await readIioDevice(this.path);
    const channels = selectChannels(settings, device.channels, `${this.name} (${this.path})`);
    const limit = (t: SensorThreshold): string => `${t.channel}:${t.kind}=${t.limit}`;
    const unchanged = new Set(this.settings.thresholds.filter((t) => settings.thresholds.some((n) => limit(n) === limit(t))).map(limit));
    for (const t of this.settings.thresholds) if (!unchanged.has(limit(t))) this.beyond.delete(`${t.channel}:${t.kind}`);
    this.channels = channels.map((channel) => ({ channel, unit: Buffer.from(channel.unit) }));
    const period = this.settings.samplePeriodMs;
    this.settings = settings;
    if (period !== settings.samplePeriodMs || !this.timer) this.restartTimer();
  }

  async execute(command: DeviceCommand): Promise<CommandReply> {
    if (command.op !== CommandOp.SensorRead) throw new UnsupportedError(`a sensor has no ${CommandOp[command.op] ?? `op ${command.op}`} command`);
    if (this.closed) throw new DeviceError(`${this.path} is closed`);
    const open = this.channels.find((c) => c.channel.name === command.target);
    if (!open) throw new ValidationError('target', `no channel "${command.target}" in this mapping (channels: ${this.channelNames()})`);
    try {
      const value = await readChannel(this.path, open.channel);
      this.checkThresholds(open.channel.name, value, eventTimestamp());
      return { value, data: open.unit };
    } catch (err) {
      if (!(await iioDeviceExists(this.path))) throw this.gone();
      throw err;
    }
  }

  async configuration(): Promise<Record<string, string>> {
    const out: Record<string, string> = { samplePeriodMs: String(this.settings.samplePeriodMs), channels: this.channelNames() };
    for (const t of this.settings.thresholds) out[`threshold.${t.channel}.${t.kind}`] = String(t.limit);
    return out;
  }

  async close(): Promise<void> {
    this.shutdown(null);
  }

  private channelNames(): string {
    return this.channels.map((c) => c.channel.name).join(',');
  }

  private restartTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.settings.samplePeriodMs > 0) this.timer = setInterval(() => this.tick(), this.settings.samplePeriodMs);
  }

  private tick(): void {
    if (this.reading || this.closed) return;
    this.reading = true;
    void this.sample().finally(() => {
      this.reading = false;
    });
  }

  private async sample(): Promise<void> {
    const channels = this.channels;
    const results = await Promise.allSettled(channels.map((c) => readChannel(this.path, c.channel)));
    if (this.closed) return;
    const timestampMs = eventTimestamp();
    let failure: unknown = null;
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        failure ??= r.reason;
        return;
      }
      const { channel, unit } = channels[i];
      this.emit({ type: DeviceEventType.SensorSample, timestampMs, source: channel.name, value: r.value, data: unit });
      this.checkThresholds(channel.name, r.value, timestampMs);
    });
    if (failure === null) {
      this.lastFailure = null;
      return;
    }
    if (!(await iioDeviceExists(this.path))) {
      this.gone();
      return;
    }
    const message = failure instanceof Error ? failure.message : String(failure);
    if (message !== this.lastFailure) this.emitError(message);
    this.lastFailure = message;
  }

  private checkThresholds(channel: string, value: number, timestampMs: number): void {
    for (const t of this.settings.thresholds) {
      if (t.channel !== channel) continue;
      const key = `${channel}:${t.kind}`;
      const beyond = t.kind === 'above' ? value > t.limit : value < t.limit;
      const was = this.beyond.get(key) ?? false;
      this.beyond.set(key, beyond);
      if (beyond && !was) this.emit({ type: DeviceEventType.SensorThreshold, timestampMs, source: key, value, data: Buffer.alloc(0) });
    }
  }

  private emit(event: DeviceEvent): void {
    this.listener?.(event);
  }

  private emitError(message: string): void {
    this.emit({ type: DeviceEventType.DeviceError, timestampMs: eventTimestamp(), source: '', value: 0, data: Buffer.from(message) });
  }

  /** The device directory is gone (unplugged, driver unbound): report, then end the stream. */
  private gone(): DeviceError {
    const err = new DeviceError(`IIO device ${this.path} is gone`);
    if (!this.closed) {
      this.emitError(err.message);
      this.shutdown(err);
    }
    return err;
  }

  private shutdown(err: DeviceError | null): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stream.destroy(err ?? undefined);
  }
}

/**
 * Industrial I/O sensors through sysfs (thermometers, ADCs, accelerometers, light and humidity
 * sensors …): one device is one iio:deviceN directory, read with fs.promises.
 */
export class SensorDriver implements DeviceDriver {
  readonly kind: DeviceKind = 'DEVICE_KIND_SENSOR';
  private readonly root: string;

  constructor(options: SensorDriverOptions = {}) {
    this.root = options.sysfsRoot ?? IIO_SYSFS_ROOT;
  }

  validate(config: DeviceConfig): void {
    parseSensorSettings(config.settings);
  }

  async open(devicePath: string, config: DeviceConfig): Promise<DeviceHandle> {
    this.validate(config);
    const device = await readIioDevice(devicePath);
    const handle = new SensorHandle(devicePath, device.name);
    try {
      await handle.update(config);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return handle;
  }

  async list(): Promise<DiscoveredDevice[]> {
    const devices: DiscoveredDevice[] = [];
    for (const dir of await listIioDeviceDirs(this.root)) {
      const base = { path: dir, kind: this.kind };
      try {
        const device = await readIioDevice(dir);
        devices.push({
          ...base,
          capabilities: ['sensor', ...device.channels.map((c) => `channel=${c.name}:${c.unit}`)],
          labels: { name: device.name, ...(device.label !== null ? { label: device.label } : {}), iio: path.basename(dir) },
        });
      } catch (err) {
        // Gone since the directory was listed: nothing to report. Unreadable: listed, with why.
        if (!(await iioDeviceExists(dir))) continue;
        devices.push({ ...base, capabilities: ['sensor'], labels: { iio: path.basename(dir), error: (err as Error).message } });
      }
    }
    return devices;
  }
}
