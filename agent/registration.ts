import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import { serviceClient } from '../src/proto/load';
import type { PhysicalEndpoint } from '../src/proto/types';
import { Backoff } from '../src/util/backoff';

/** A device this agent reports to the control plane. */
export interface ReportedDevice {
  deviceId: string;
  path: string;
  capabilities: string[];
  labels?: Record<string, string>;
}

export interface RegistrationOptions {
  /** host:port of the control plane's gRPC. */
  address: string;
  hostId: string;
  log: Logger;
  credentials?: grpc.ChannelCredentials;
  callTimeoutMs?: number;
}

export interface RegistrationStatus {
  deviceId: string;
  path: string;
  wanted: 'present' | 'absent';
  /** The control plane confirmed the wanted state. */
  synced: boolean;
}

type Unary<Req, Res> = (req: Req, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;

interface RegistryClient extends grpc.Client {
  registerEndpoint: Unary<{ endpoint: PhysicalEndpoint }, PhysicalEndpoint>;
  deregisterEndpoint: Unary<{ id: string; markAbsent: boolean }, object>;
}

interface Entry {
  endpoint: PhysicalEndpoint;
  wanted: 'present' | 'absent';
  synced: boolean;
  busy: boolean;
  /** The wanted state changed (or a resync was asked) while a call was in flight. */
  again: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  backoff: Backoff;
}

/**
 * Keeps the control plane's register true for this host: RegisterEndpoint for each device that
 * is present, DeregisterEndpoint {markAbsent} for each that went away. Calls that fail are
 * retried with backoff until they succeed, so a control plane that is down (at start or later)
 * catches up once it is back; resync() re-registers everything when the discovery stream
 * (re)connects, in case the control plane lost its state.
 */
export class Registration {
  private readonly client: RegistryClient;
  private readonly entries = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private closed = false;

  constructor(private readonly options: RegistrationOptions) {
    const Ctor = serviceClient('devicemesh.v1.Registry');
    this.client = new Ctor(options.address, options.credentials ?? grpc.credentials.createInsecure()) as unknown as RegistryClient;
    this.timeoutMs = options.callTimeoutMs ?? 5000;
  }

  private endpointId(deviceId: string): string {
    return `${this.options.hostId}/${deviceId}`;
  }

  add(device: ReportedDevice): void {
    const endpoint: PhysicalEndpoint = {
      id: this.endpointId(device.deviceId),
      hostId: this.options.hostId,
      deviceId: device.deviceId,
      kind: 'DEVICE_KIND_SERIAL',
      path: device.path,
      capabilities: device.capabilities,
      state: 'ENDPOINT_STATE_PRESENT',
      labels: device.labels ?? {},
      updatedAt: null,
      configuration: {},
    };
    const entry = this.entries.get(device.deviceId);
    if (entry) {
      entry.endpoint = endpoint;
      entry.wanted = 'present';
      this.sync(entry, true);
      return;
    }
    const fresh: Entry = {
      endpoint,
      wanted: 'present',
      synced: false,
      busy: false,
      again: false,
      failures: 0,
      timer: undefined,
      backoff: new Backoff(250, 5000),
    };
    this.entries.set(device.deviceId, fresh);
    this.sync(fresh, true);
  }

  remove(deviceId: string): void {
    const entry = this.entries.get(deviceId);
    if (!entry) return;
    entry.wanted = 'absent';
    this.sync(entry, true);
  }

  /** Re-registers every present device, e.g. after the discovery stream reconnected. */
  resync(): void {
    for (const entry of this.entries.values()) if (entry.wanted === 'present') this.sync(entry, true);
  }

  status(): RegistrationStatus[] {
    return [...this.entries.values()].map((e) => ({
      deviceId: e.endpoint.deviceId,
      path: e.endpoint.path,
      wanted: e.wanted,
      synced: e.synced,
    }));
  }

  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
    this.client.close();
  }

  /** One call at a time per device; `changed` forces a call even if the last one succeeded. */
  private sync(entry: Entry, changed: boolean): void {
    if (this.closed) return;
    if (changed) entry.synced = false;
    if (entry.busy) {
      entry.again = true;
      return;
    }
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.busy = true;
    entry.again = false;
    const wanted = entry.wanted;
    const id = entry.endpoint.id;
    const done = (err: grpc.ServiceError | null): void => {
      entry.busy = false;
      if (this.closed) return;
      // Absent already is as good as marked absent.
      if (err && !(wanted === 'absent' && err.code === grpc.status.NOT_FOUND)) {
        entry.failures += 1;
        const delay = entry.backoff.next();
        const fields = { endpoint: id, wanted, error: err.details || err.message, retryInMs: Math.round(delay) };
        if (entry.failures === 1) this.options.log.warn(fields, 'registering device with the control plane failed; retrying');
        else this.options.log.debug(fields, 'registration retry failed');
        if (entry.again) this.sync(entry, false);
        else entry.timer = setTimeout(() => this.sync(entry, false), delay);
        return;
      }
      if (entry.failures > 0) this.options.log.info({ endpoint: id, wanted }, 'registration succeeded after retries');
      entry.failures = 0;
      entry.backoff.reset();
      if (entry.again) {
        this.sync(entry, false);
        return;
      }
      entry.synced = true;
      if (wanted === 'absent') this.entries.delete(entry.endpoint.deviceId);
    };
    const options = { deadline: Date.now() + this.timeoutMs };
    try {
      if (wanted === 'present') this.client.registerEndpoint({ endpoint: entry.endpoint }, options, (err) => done(err));
      else this.client.deregisterEndpoint({ id, markAbsent: true }, options, (err) => done(err));
    } catch (err) {
      // A closed channel throws synchronously; only possible while shutting down.
      entry.busy = false;
      this.options.log.debug({ endpoint: id, error: errorMessage(err) }, 'registration call not made');
    }
  }
}
