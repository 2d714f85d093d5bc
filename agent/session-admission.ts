import { DeviceMeshError, errorCode, errorMessage, NotFoundError, PermissionDeniedError, UnavailableError } from '../src/errors';
import type { Logger } from '../src/log';
import type { Mapping } from '../src/proto/types';
import type { Session } from '../src/socket-plane/session';
import type { Stats } from '../src/telemetry/stats';
import type { DeviceInventory } from './device-inventory';
import { withdrawn } from './device-configurator';
import type { SessionPort } from './session/session-port';
import type { MappingTable } from './mapping-table';

export interface SessionAdmissionOptions {
  hostId: string;
  mappings: MappingTable;
  devices: Pick<DeviceInventory, 'get'>;
  stats: Stats;
  log: Logger;
}

/** Label of `sessions_refused` per refusal code. */
const REFUSAL_REASON: Partial<Record<string, string>> = {
  NOT_FOUND: 'unknown_mapping',
  PERMISSION_DENIED: 'permission_denied',
  UNAVAILABLE: 'device_absent',
  RESOURCE_EXHAUSTED: 'in_use',
  DEVICE_ERROR: 'device_error',
};

/** The `sessions_refused` reason of a refusal with this code. */
export function refusalReason(code: string): string {
  return REFUSAL_REASON[code] ?? code.toLowerCase();
}

/** Who asks for a session, as the log shows it (a verified SPIFFE ID, a socket's owner, or a plaintext peer). */
export interface SessionAsker {
  peer: string;
  identity: string;
}

/**
 * The one way into a device, whichever path the consumer came by (a socket-plane OPEN, a one-hop
 * app connection): the mapping must exist and belong to the workload that asks, its device must be
 * present, and the device host admits the session under the mapping's sharing and limits. An
 * admitted session is counted and logged until it closes.
 */
export class SessionAdmission {
  private active = 0;

  constructor(private readonly options: SessionAdmissionOptions) {
    options.stats.set('sessions_active', 0);
  }

  /**
   * Opens `mappingId`'s device for `workloadId`; rejects with the DeviceMeshError the asker is told.
   * `gone` says whether the asker left while the device opened (the port is then given up).
   */
  async open(mappingId: string, workloadId: string, gone: () => boolean): Promise<{ mapping: Mapping; port: SessionPort } | undefined> {
    const { mappings, devices, hostId } = this.options;
    const mapping = mappings.get(mappingId);
    if (!mapping) throw new NotFoundError(`unknown mapping ${mappingId}`);
    if (mapping.workloadId !== workloadId) throw new PermissionDeniedError(`mapping ${mappingId} does not belong to workload ${workloadId}`);
    const device = devices.get(mapping.devicePath);
    if (!device?.present) throw new UnavailableError(`device ${mapping.devicePath} is not present on host ${hostId}`);
    let port: SessionPort;
    try {
      port = await device.host.open(mapping);
    } catch (err) {
      throw err instanceof DeviceMeshError ? err : new DeviceMeshError(errorCode(err, 'DEVICE_ERROR'), errorMessage(err));
    }
    // The asker or the mapping may have gone while the device opened.
    if (gone()) {
      port.destroy();
      return undefined;
    }
    const current = mappings.get(mappingId);
    if (!current || current.workloadId !== workloadId || current.devicePath !== mapping.devicePath) {
      port.destroy();
      const err = withdrawn(mappingId);
      throw new DeviceMeshError(err.code, err.message);
    }
    return { mapping, port };
  }

  /** Joins an admitted port to its session, counted in `sessions_opened` / `sessions_active` and logged. */
  attach(port: SessionPort, session: Session, mapping: Mapping, asker: SessionAsker, traceparent?: string): void {
    const { stats, log } = this.options;
    port.attach(session, traceparent);
    stats.add('sessions_opened', 1);
    stats.set('sessions_active', ++this.active);
    const ids = { mapping: mapping.id, binding: mapping.binding, workload: mapping.workloadId, device: mapping.devicePath };
    log.info({ peer: asker.peer, identity: asker.identity, ...ids, session: session.id }, 'session opened');
    session.once('close', (err?: DeviceMeshError) => {
      stats.set('sessions_active', --this.active);
      log.info({ peer: asker.peer, ...ids, session: session.id, code: err?.code, error: err?.message }, 'session closed');
    });
  }
}
