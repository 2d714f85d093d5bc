import { EventEmitter } from 'node:events';
import type { ErrorPayload } from '../src/socket-plane/control-messages';
import { DeviceSessionHost, type DeviceSessionHostOptions } from './session/device-session-host';
import type { DeviceDriver, DiscoveredDevice } from './drivers/device-driver';

/** A device with the identity it is registered under. */
export type IdentifiedDevice = DiscoveredDevice & { deviceId: string };

/** A device this host has had: present now or not. */
export interface DeviceRecord {
  device: IdentifiedDevice;
  present: boolean;
  driver: DeviceDriver;
  host: DeviceSessionHost;
  /** What the device's driver read back after its last open or change; {} while it is closed. */
  configuration: Record<string, string>;
}

/** What the inventory needs to give a device its session host. */
export type HostOptionsFor = (device: IdentifiedDevice, onConfiguration: (configuration: Record<string, string>) => void) => DeviceSessionHostOptions;

/**
 * The devices of this host, by port path, from the watcher and the simulated set. A device keeps
 * its DeviceSessionHost across unplug and replug at the same path, so a reopen waits for the old
 * close; a different device plugged in at that path gets a host of its own.
 *
 * Events: `added` (DeviceRecord), `removed` (DeviceRecord), `changed` (DeviceRecord: its
 * configuration was read back).
 */
export class DeviceInventory extends EventEmitter {
  private readonly records = new Map<string, DeviceRecord>();

  constructor(private readonly hostOptions: HostOptionsFor) {
    super();
  }

  add(device: IdentifiedDevice): void {
    let record = this.records.get(device.path);
    if (record?.present) return;
    if (record && record.device.kind === device.kind) {
      record.present = true;
      record.device = device;
    } else {
      const options = this.hostOptions(device, (configuration) => {
        if (!fresh.present && Object.keys(configuration).length > 0) return;
        fresh.configuration = configuration;
        this.emit('changed', fresh);
      });
      const fresh: DeviceRecord = { device, present: true, driver: options.driver, host: new DeviceSessionHost(options), configuration: {} };
      record = fresh;
      this.records.set(device.path, record);
    }
    this.emit('added', record);
  }

  remove(path: string): void {
    const record = this.records.get(path);
    if (!record?.present) return;
    record.present = false;
    record.host.deviceRemoved();
    this.emit('removed', record);
  }

  get(path: string): DeviceRecord | undefined {
    return this.records.get(path);
  }

  present(): DeviceRecord[] {
    return [...this.records.values()].filter((r) => r.present);
  }

  all(): DeviceRecord[] {
    return [...this.records.values()];
  }

  /** Resets every session and closes every device. */
  async close(err: ErrorPayload): Promise<void> {
    await Promise.all([...this.records.values()].map((r) => r.host.close(err)));
  }
}
