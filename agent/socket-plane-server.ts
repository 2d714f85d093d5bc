import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { DeviceMeshError, errorMessage } from '../src/errors';
import type { Logger } from '../src/log';
import type { Mapping } from '../src/proto/types';
import type { TlsIdentity } from '../src/security/tls-identity';
import { type ConnectionOptions, FramedConnection, type OpenDecision } from '../src/socket-plane/connection';
import type { ErrorPayload } from '../src/socket-plane/control-messages';
import type { Stats } from '../src/telemetry/stats';
import { formatHostPort, parseHostPort } from '../src/util/address';
import type { DeviceInventory } from './device-inventory';
import { deviceConfig } from './device-session-host';
import type { MappingTable } from './mapping-table';

export interface SocketPlaneServerOptions {
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  hostId: string;
  mappings: MappingTable;
  devices: DeviceInventory;
  stats: Stats;
  log: Logger;
  connection?: ConnectionOptions;
  /** Serve mTLS with these credentials, the peer's workload identity checked on every OPEN; without, plaintext (`--insecure`). */
  tls?: TlsIdentity;
}

const CLOSE_GRACE_MS = 1000;

/** Label of `sessions_refused` per refusal code. */
const REFUSAL_REASON: Partial<Record<string, string>> = {
  NOT_FOUND: 'unknown_mapping',
  PERMISSION_DENIED: 'permission_denied',
  UNAVAILABLE: 'device_absent',
  RESOURCE_EXHAUSTED: 'in_use',
  DEVICE_ERROR: 'device_error',
};

function withdrawn(mappingId: string): ErrorPayload {
  return { code: 'NOT_FOUND', message: `binding withdrawn (mapping ${mappingId})` };
}

/**
 * The agent's end of the socket plane: sidecars connect, and each OPEN names a mapping and the
 * workload asking. A session is accepted only for a mapping of this agent, owned by that
 * workload, whose device is present and free; the device is opened only then. A connection that
 * breaks the protocol gets a GOAWAY with the reason and is closed, without touching the others.
 */
export class SocketPlaneServer {
  private readonly server: net.Server;
  private readonly connections = new Set<FramedConnection>();
  private active = 0;
  /** Configuration checks and changes under way for the last mapping update, each with its refusal. */
  private checks: Array<Promise<string | undefined>> = [];

  constructor(private readonly options: SocketPlaneServerOptions) {
    this.server = net.createServer((socket) => this.onSocket(socket));
    options.mappings.on('removed', (m: Mapping) => this.onMappingRemoved(m));
    options.mappings.on('changed', (m: Mapping, old: Mapping) => this.onMappingChanged(m, old));
    options.mappings.on('added', (m: Mapping) => this.checks.push(this.check(m)));
    options.stats.set('sessions_active', 0);
  }

  /** Starts listening; resolves with the bound host:port. */
  listen(): Promise<string> {
    const { host, port } = parseHostPort(this.options.listen);
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const bound = formatHostPort({ host, port: (this.server.address() as AddressInfo).port });
        this.options.log.info({ socketPlane: bound }, 'socket plane listening');
        resolve(bound);
      });
    });
  }

  /** Stops accepting and closes every connection with a GOAWAY (their sessions end with it). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const conns = [...this.connections];
    for (const conn of conns) conn.goAway({ code: 'UNAVAILABLE', message: 'agent shutting down' });
    // A peer that stopped reading would hold the GOAWAY flush, and the shutdown, forever.
    setTimeout(() => {
      for (const conn of conns) conn.destroy();
    }, CLOSE_GRACE_MS).unref();
    return closed;
  }

  private onSocket(socket: net.Socket): void {
    const conn = new FramedConnection(socket, 'server', this.options.connection);
    const peer = conn.remoteAddress();
    this.connections.add(conn);
    conn.on('open', (decision: OpenDecision) => this.onOpen(conn, decision, peer));
    conn.on('protocolError', (err: DeviceMeshError) => {
      this.options.stats.add('socket_plane_protocol_errors', 1);
      this.options.log.warn({ peer, error: err.message }, 'socket-plane protocol error; connection closed with GOAWAY');
    });
    conn.on('close', () => this.connections.delete(conn));
  }

  private onOpen(conn: FramedConnection, decision: OpenDecision, peer: string): void {
    const { mappingId, workloadId } = decision.request;
    const { mappings, devices, log, stats } = this.options;
    const refuse = (err: ErrorPayload): void => {
      stats.add('sessions_refused', 1, { reason: REFUSAL_REASON[err.code] ?? err.code.toLowerCase() });
      log.info({ peer, mapping: mappingId, workload: workloadId, code: err.code, error: err.message }, 'session refused');
      decision.refuse(err);
    };

    const mapping = mappings.get(mappingId);
    if (!mapping) return refuse({ code: 'NOT_FOUND', message: `unknown mapping ${mappingId}` });
    if (mapping.workloadId !== workloadId) {
      return refuse({ code: 'PERMISSION_DENIED', message: `mapping ${mappingId} does not belong to workload ${workloadId}` });
    }
    const device = devices.get(mapping.devicePath);
    if (!device?.present) {
      return refuse({ code: 'UNAVAILABLE', message: `device ${mapping.devicePath} is not present on host ${this.options.hostId}` });
    }

    device.host.open(mapping).then(
      (port) => {
        // The connection or the mapping may have gone while the device opened.
        if (conn.isClosed) {
          port.destroy();
          return;
        }
        const current = mappings.get(mappingId);
        if (!current || current.workloadId !== workloadId || current.devicePath !== mapping.devicePath) {
          port.destroy();
          refuse(withdrawn(mappingId));
          return;
        }
        const session = decision.accept();
        port.attach(session, decision.request.traceparent);
        stats.add('sessions_opened', 1);
        stats.set('sessions_active', ++this.active);
        const ids = { mapping: mappingId, binding: mapping.binding, workload: workloadId, device: mapping.devicePath };
        log.info({ peer, ...ids, session: session.id }, 'session opened');
        session.once('close', (err?: DeviceMeshError) => {
          stats.set('sessions_active', --this.active);
          log.info({ peer, ...ids, session: session.id, code: err?.code, error: err?.message }, 'session closed');
        });
      },
      (err: unknown) => {
        const code = err instanceof DeviceMeshError ? err.code : 'DEVICE_ERROR';
        refuse({ code, message: errorMessage(err) });
      },
    );
  }

  /**
   * Waits for the checks and changes the last mapping update started and returns what the
   * drivers refused, each as "mapping <id>: <reason>": the discovery stream NACKs with them.
   */
  async settle(): Promise<string[]> {
    const checks = this.checks;
    this.checks = [];
    return (await Promise.all(checks)).filter((r): r is string => r !== undefined);
  }

  /** The driver's verdict on a mapping's configuration, while its device is here to ask. */
  private check(m: Mapping): Promise<string | undefined> {
    const record = this.options.devices.get(m.devicePath);
    if (!record) return Promise.resolve(undefined);
    try {
      record.driver.validate(deviceConfig(m));
      return Promise.resolve(undefined);
    } catch (err) {
      return Promise.resolve(`mapping ${m.id}: ${errorMessage(err)}`);
    }
  }

  private onMappingRemoved(m: Mapping): void {
    this.options.devices.get(m.devicePath)?.host.resetMapping(m.id, withdrawn(m.id));
  }

  private onMappingChanged(m: Mapping, old: Mapping): void {
    const host = this.options.devices.get(old.devicePath)?.host;
    if (!host) return;
    if (old.devicePath !== m.devicePath || old.workloadId !== m.workloadId) {
      host.resetMapping(m.id, withdrawn(m.id));
      return;
    }
    host.retune(m);
    if (isDeepStrictEqual(old.serial, m.serial) && isDeepStrictEqual(old.settings, m.settings)) return;
    const checked = this.check(m).then(async (refused) => {
      if (refused) return refused;
      try {
        if (await host.update(m)) this.options.log.info({ mapping: m.id, device: m.devicePath, serial: m.serial, settings: m.settings }, 'device configuration updated');
        return undefined;
      } catch (err) {
        this.options.log.warn({ mapping: m.id, device: m.devicePath, error: errorMessage(err) }, 'device refused the configuration');
        return `mapping ${m.id}: device ${m.devicePath} refused the configuration: ${errorMessage(err)}`;
      }
    });
    this.checks.push(checked);
  }
}
