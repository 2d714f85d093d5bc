import { autoDetect } from '@serialport/bindings-cpp';
import { ValidationError } from '../src/errors';
import type { Logger } from '../src/log';
import { startAdminServer, type RunningAdmin } from '../src/admin/admin-server';
import { Stats } from '../src/telemetry/stats';
import { parseHostPort } from '../src/util/address';
import { AdsClient } from '../src/xds/ads-client';
import { MAPPING_TYPE_URL } from '../src/xds/type-urls';
import { DeviceInventory, type DeviceRecord } from './device-inventory';
import { DeviceWatcher } from './device-watcher';
import type { DeviceDriver } from './drivers/device-driver';
import { SerialDriver } from './drivers/serial-driver';
import { SIMULATED_PREFIX, SimulatedModemBinding } from './drivers/simulated-modem';
import { MappingTable } from './mapping-table';
import { Registration } from './registration';
import { SocketPlaneServer } from './socket-plane-server';

export interface AgentOptions {
  hostId: string;
  /** host:port of the control plane's gRPC. */
  controlPlane: string;
  /** Socket plane host:port, e.g. 127.0.0.1:15020 (port 0 allowed). */
  listen: string;
  /** Socket-plane address announced to the control plane; default: the bound listen address. */
  advertise?: string;
  /** Globs like /dev/ttyUSB* (wildcards '*' and '?' in the last path segment only). */
  watch: string[];
  /** Simulated devices by kind: "modem" → an AT modem at sim:modem0 (the next one sim:modem1). */
  simulate: string[];
  /** Admin host:port. */
  admin: string;
  log: Logger;
}

export interface RunningAgent {
  socketPlaneAddress: string;
  adminAddress: string;
  close(): Promise<void>;
}

const SIMULATED_KINDS = ['modem'];

/** `["modem", "modem"]` → `{ "modem0": "modem", "modem1": "modem" }`. */
function simulatedNames(kinds: readonly string[]): Map<string, string> {
  const names = new Map<string, string>();
  const counts = new Map<string, number>();
  for (const kind of kinds) {
    if (!SIMULATED_KINDS.includes(kind)) {
      throw new ValidationError('--simulate', `unknown simulated device "${kind}" (known: ${SIMULATED_KINDS.join(', ')})`);
    }
    const n = counts.get(kind) ?? 0;
    counts.set(kind, n + 1);
    names.set(`${kind}${n}`, kind);
  }
  return names;
}

const STATS_HELP: Readonly<Record<string, string>> = {
  bytes_to_device: 'Bytes written to devices, per mapping',
  bytes_from_device: 'Bytes read from devices, per mapping',
  sessions_opened: 'Socket-plane sessions accepted',
  sessions_refused: 'Socket-plane sessions refused, per reason',
  sessions_active: 'Socket-plane sessions open now',
  devices_present: 'Devices present on this host',
  socket_plane_protocol_errors: 'Socket-plane connections closed for a protocol error',
};

/**
 * Runs a host agent: finds devices (watched globs and simulated ones), registers them with the
 * control plane, receives this host's mappings over ADS, and serves the socket plane through
 * which sidecars use the devices.
 */
export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const { hostId, log } = options;
  if (!hostId) throw new ValidationError('--host-id', 'is required');
  if (hostId.includes('/')) throw new ValidationError('--host-id', `"${hostId}" must not contain '/'`);
  parseHostPort(options.controlPlane);
  if (options.advertise !== undefined) parseHostPort(options.advertise);
  const simulated = simulatedNames(options.simulate);

  const realDriver = new SerialDriver(autoDetect());
  const simDriver = new SerialDriver(new SimulatedModemBinding([...simulated.keys()]));
  const driverFor = (path: string): DeviceDriver => (path.startsWith(SIMULATED_PREFIX) ? simDriver : realDriver);

  const stats = new Stats(STATS_HELP);
  const mappings = new MappingTable(hostId);
  const devices = new DeviceInventory((path) => ({ path, driver: driverFor(path), stats, log: log.child({ device: path }) }));
  const watcher = new DeviceWatcher({ globs: options.watch, log: log.child({ module: 'watcher' }), list: () => realDriver.list() });
  const server = new SocketPlaneServer({ listen: options.listen, hostId, mappings, devices, stats, log: log.child({ module: 'socket-plane' }) });
  const socketPlaneAddress = await server.listen();
  const advertise = options.advertise ?? socketPlaneAddress;

  const registration = new Registration({ address: options.controlPlane, hostId, log: log.child({ module: 'registration' }) });
  const ads = new AdsClient({
    address: options.controlPlane,
    identity: { id: hostId, kind: 'agent', metadata: { socketPlane: advertise } },
    handlers: { [MAPPING_TYPE_URL]: (resources, version) => mappings.apply(resources, version) },
    log: log.child({ module: 'ads' }),
  });

  let admin: RunningAdmin;
  try {
    admin = await startAdminServer(
      options.admin,
      {
        ready: () => mappings.version !== undefined,
        stats,
        configDump: () => ({
          hostId,
          socketPlane: advertise,
          listen: socketPlaneAddress,
          controlPlane: options.controlPlane,
          versions: ads.versions(),
          mappingsVersion: mappings.version ?? null,
          devices: devices.all().map((d) => ({
            path: d.path,
            deviceId: d.deviceId,
            present: d.present,
            labels: d.labels,
            open: d.host.isOpen,
            sessions: d.host.sessions(),
          })),
          registration: registration.status(),
          mappings: mappings.all(),
        }),
      },
      log,
    );
  } catch (err) {
    ads.stop();
    registration.close();
    await server.close();
    throw err;
  }

  const countDevices = (): void => stats.set('devices_present', devices.present().length);
  devices.on('added', (d: DeviceRecord) => {
    registration.add({ deviceId: d.deviceId, path: d.path, capabilities: ['serial'], labels: d.labels });
    countDevices();
  });
  devices.on('removed', (d: DeviceRecord) => {
    registration.remove(d.deviceId);
    countDevices();
  });
  countDevices();
  watcher.on('added', (path: string, deviceId: string) => devices.add(path, deviceId));
  watcher.on('removed', (path: string) => devices.remove(path));
  // A control plane that restarted may have lost the register: tell it again on every new stream.
  ads.on('connected', () => registration.resync());

  for (const [name, kind] of simulated) devices.add(SIMULATED_PREFIX + name, SIMULATED_PREFIX + name, { simulated: kind });
  await watcher.start();
  ads.start();
  log.info({ hostId, socketPlane: socketPlaneAddress, advertise, admin: admin.address, watch: options.watch, simulate: options.simulate }, 'agent started');

  let closing: Promise<void> | undefined;
  return {
    socketPlaneAddress,
    adminAddress: admin.address,
    close: () => {
      closing ??= (async () => {
        watcher.stop();
        ads.stop();
        registration.close();
        await server.close();
        await devices.close({ code: 'UNAVAILABLE', message: 'agent shutting down' });
        await admin.close();
        log.info({ hostId }, 'agent stopped');
      })();
      return closing;
    },
  };
}
