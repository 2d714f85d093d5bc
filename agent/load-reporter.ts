import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import type { ReportLoadRequest } from '../src/proto/types';
import type { Stats } from '../src/telemetry/stats';
import type { BindingLoadSample } from './session/device-session-host';
import { type RegistryClient, registryClient } from './registry-client';

/** One device's measured load, as the reporter gathers it. */
export interface DeviceLoadSample {
  /** The device id on this host; the control plane's physical id is `<host>/<device id>`. */
  deviceId: string;
  path: string;
  bytesPerSecond: number;
  bindings: BindingLoadSample[];
}

export interface LoadReporterOptions {
  address: string;
  hostId: string;
  intervalMs: number;
  /** The devices' loads now. */
  sample: () => DeviceLoadSample[];
  stats: Stats;
  log: Logger;
  credentials?: grpc.ChannelCredentials;
}

/**
 * Measures and reports: every interval it publishes each binding's and device's moving rate as
 * gauges and sends them to the control plane (Registry.ReportLoad), whose bandwidth controller
 * turns them into adaptive limits. One report is in flight at a time; a failed one is logged and
 * the next interval sends fresh figures (old rates are worth nothing to the controller).
 */
export class LoadReporter {
  private readonly client: RegistryClient;
  private readonly timer: NodeJS.Timeout;
  private inFlight = false;
  private failures = 0;

  constructor(private readonly options: LoadReporterOptions) {
    this.client = registryClient(options.address, options.credentials);
    this.timer = setInterval(() => this.tick(), options.intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    const { hostId, stats } = this.options;
    const devices = this.options.sample();
    const request: ReportLoadRequest = { hostId, bindings: [], devices: [] };
    for (const d of devices) {
      stats.set('device_bytes_per_second', d.bytesPerSecond, { device: d.path });
      request.devices.push({ physicalId: `${hostId}/${d.deviceId}`, bytesPerSecond: d.bytesPerSecond });
      for (const b of d.bindings) {
        stats.set('binding_bytes_per_second', b.bytesPerSecond, { mapping: b.mappingId });
        stats.set('binding_commands_per_second', b.commandsPerSecond, { mapping: b.mappingId });
        request.bindings.push({
          mappingId: b.mappingId,
          bytesPerSecond: b.bytesPerSecond,
          commandsPerSecond: b.commandsPerSecond,
          throttled: b.throttled,
          droppedBytes: String(b.droppedBytes),
          droppedCommands: String(b.droppedCommands),
        });
      }
    }
    // An empty report still tells the controller this host is idle, so it can relax.
    if (this.inFlight || devices.length === 0) return;
    this.inFlight = true;
    this.client.reportLoad(request, { deadline: Date.now() + this.options.intervalMs * 2 }, (err) => {
      this.inFlight = false;
      if (!err) {
        this.failures = 0;
        return;
      }
      // Once per outage at warn: the control plane being away is expected and already visible elsewhere.
      if (this.failures++ === 0) this.options.log.warn({ error: errorMessage(err) }, 'load report failed');
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.client.close();
  }
}
