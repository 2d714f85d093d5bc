import { EventEmitter } from 'node:events';
import type { ErrorPayload } from '../src/socket-plane/control-messages';
import { DeviceSessionHost, type DeviceSessionHostOptions } from './device-session-host';

/** A device this host has had: present now or not. */
export interface DeviceRecord {
  path: string;
  deviceId: string;
  present: boolean;
  /** e.g. { simulated: 'modem' }; reported to the control plane. */
  labels: Record<string, string>;
  host: DeviceSessionHost;
}

/**
 * The devices of this host, by port path, from the watcher and the simulated set. A device keeps
 * its DeviceSessionHost across unplug and replug, so a reopen waits for the old close.
 *
 * Events: `added` (DeviceRecord), `removed` (DeviceRecord).
 */
export class DeviceInventory extends EventEmitter {
  private readonly records = new Map<string, DeviceRecord>();

  constructor(private readonly hostOptions: (path: string) => DeviceSessionHostOptions) {
    super();
  }

  add(path: string, deviceId: string, labels: Record<string, string> = {}): void {
    let record = this.records.get(path);
    if (record?.present) return;
    if (record) {
      record.present = true;
      record.deviceId = deviceId;
      record.labels = labels;
    } else {
      record = { path, deviceId, present: true, labels, host: new DeviceSessionHost(this.hostOptions(path)) };
      this.records.set(path, record);
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
