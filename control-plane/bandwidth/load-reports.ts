import type { BindingLoadReport, ReportLoadRequest } from '../../src/proto/types';

/** A host's latest load report, as received. */
export interface HostLoad {
  hostId: string;
  /** When it arrived, on the reports' clock (ms). */
  receivedAt: number;
  bindings: ReadonlyMap<string, BindingLoadReport>;
  /** physical id → bytes/s. */
  devices: ReadonlyMap<string, number>;
}

/**
 * The latest load report of each host, replacing the one before: the controller acts on current
 * measurements only, so nothing older is kept. Reports are checked before they get here.
 */
export class LoadReports {
  private readonly hosts = new Map<string, HostLoad>();

  constructor(private readonly now: () => number = Date.now) {}

  put(report: ReportLoadRequest): HostLoad {
    const load: HostLoad = {
      hostId: report.hostId,
      receivedAt: this.now(),
      bindings: new Map(report.bindings.map((b) => [b.mappingId, b])),
      devices: new Map(report.devices.map((d) => [d.physicalId, d.bytesPerSecond])),
    };
    this.hosts.set(report.hostId, load);
    return load;
  }

  /** The host's latest report if it arrived at most `maxAgeMs` ago. */
  fresh(hostId: string, maxAgeMs: number): HostLoad | undefined {
    const load = this.hosts.get(hostId);
    return load && this.now() - load.receivedAt <= maxAgeMs ? load : undefined;
  }
}
