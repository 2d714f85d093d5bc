import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../src/log';
import type { DeviceKind, PhysicalEndpoint } from '../src/proto/types';
import { Backoff } from '../src/util/backoff';
import { type RegistryClient, registryClient } from './registry-client';

/** A device this agent reports to the control plane. */
export interface ReportedDevice {
  deviceId: string;
  path: string;
  kind: DeviceKind;
  capabilities: string[];
  labels: Record<string, string>;
  /** What the driver read back from the open device; {} while it is closed. */
  configuration: Record<string, string>;
}

export interface RegistrationOptions {
  /** host:port of the control plane's gRPC. */
  address: string;
  hostId: string;
  log: Logger;
  credentials?: grpc.ChannelCredentials;
  callTimeoutMs?: number;
  /** How long a change waits for others to join its report (a burst of hotplug events is one report). */
  coalesceMs?: number;
}

export interface RegistrationStatus {
  devices: number;
  /** The control plane has the inventory as it is now. */
  synced: boolean;
  /** Control-plane version after the last report it accepted. */
  version: string | null;
  lastError: string | null;
}

/**
 * Keeps the control plane's register true for this host by reporting the whole inventory
 * (Registry.ReportHost): the control plane registers what is listed and marks absent what is
 * not, so a device that vanished while the agent was down, or while the control plane was, is
 * reconciled by the next report. One report is in flight at a time; changes during it are sent
 * in the next; a failed report is retried with backoff until one succeeds. resync() reports
 * again when the discovery stream (re)connects, in case the control plane lost its state.
 */
export class Registration {
  private readonly client: RegistryClient;
  private readonly devices = new Map<string, ReportedDevice>();
  private readonly timeoutMs: number;
  private readonly coalesceMs: number;
  private readonly backoff = new Backoff(250, 5000);
  private inFlight = false;
  private dirty = false;
  private synced = false;
  private failures = 0;
  private version: string | null = null;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Told when the report in flight is answered (withdraw waits for it). */
  private reportEnded: (() => void) | undefined;

  constructor(private readonly options: RegistrationOptions) {
    this.client = registryClient(options.address, options.credentials);
    this.timeoutMs = options.callTimeoutMs ?? 5000;
    this.coalesceMs = options.coalesceMs ?? 20;
  }

  /** The device is present (new, or with changed facts). */
  set(device: ReportedDevice): void {
    this.devices.set(device.deviceId, device);
    this.changed();
  }

  /** The device is gone: the next report leaves it out, and the control plane marks it absent. */
  remove(deviceId: string): void {
    if (this.devices.delete(deviceId)) this.changed();
  }

  /** Reports again, e.g. after the discovery stream reconnected. */
  resync(): void {
    this.changed();
  }

  status(): RegistrationStatus {
    return { devices: this.devices.size, synced: this.synced, version: this.version, lastError: this.lastError };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.client.close();
  }

  /**
   * The agent is shutting down: reports that none of its devices is here any more, so the control
   * plane marks them absent and their bindings go PENDING instead of pointing at a socket plane
   * that is gone. Waits at most `timeoutMs` (a control plane that is away is not waited for: its
   * next report from this host reconciles), then closes.
   */
  async withdraw(timeoutMs: number): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.devices.clear();
    // A report in flight lists the devices; the withdrawal must land after it.
    if (this.inFlight) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((r) => (this.reportEnded = r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => {
      this.client.reportHost({ hostId: this.options.hostId, endpoints: [] }, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) this.options.log.warn({ error: err.details || err.message }, 'could not tell the control plane this host\'s devices are gone; its next report will');
        else this.options.log.info({ version: res?.version }, 'devices reported absent to the control plane');
        resolve();
      });
    });
    this.client.close();
  }

  private changed(): void {
    this.dirty = true;
    this.synced = false;
    if (this.inFlight || this.timer || this.closed) return;
    this.timer = setTimeout(() => this.report(), this.coalesceMs);
  }

  private report(): void {
    this.timer = undefined;
    if (this.closed || this.inFlight || !this.dirty) return;
    this.inFlight = true;
    this.dirty = false;
    const endpoints = [...this.devices.values()].map((d) => this.endpoint(d));
    this.client.reportHost({ hostId: this.options.hostId, endpoints }, { deadline: Date.now() + this.timeoutMs }, (err, res) => {
      this.inFlight = false;
      this.reportEnded?.();
      if (this.closed) return;
      if (err) {
        this.dirty = true;
        this.failures += 1;
        this.lastError = err.details || err.message;
        const delay = this.backoff.next();
        const fields = { devices: endpoints.length, error: this.lastError, retryInMs: Math.round(delay) };
        if (this.failures === 1) this.options.log.warn(fields, 'reporting devices to the control plane failed; retrying');
        else this.options.log.debug(fields, 'device report retry failed');
        this.timer = setTimeout(() => this.report(), delay);
        return;
      }
      if (this.failures > 0) this.options.log.info({ devices: endpoints.length }, 'device report succeeded after retries');
      this.failures = 0;
      this.lastError = null;
      this.backoff.reset();
      this.version = res?.version ?? null;
      if (this.dirty) this.timer = setTimeout(() => this.report(), this.coalesceMs);
      else this.synced = true;
    });
  }

  private endpoint(d: ReportedDevice): PhysicalEndpoint {
    return {
      id: `${this.options.hostId}/${d.deviceId}`,
      hostId: this.options.hostId,
      deviceId: d.deviceId,
      kind: d.kind,
      path: d.path,
      capabilities: d.capabilities,
      state: 'ENDPOINT_STATE_PRESENT',
      labels: d.labels,
      updatedAt: null,
      configuration: d.configuration,
    };
  }
}
