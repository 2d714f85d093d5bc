import { ValidationError } from '../src/errors';
import type { Logger } from '../src/log';
import { startAdminServer, type RunningAdmin } from '../src/admin/admin-server';
import { processStatsOptions } from '../src/telemetry/process-telemetry';
import { Stats } from '../src/telemetry/stats';
import { parseAddressList, parseHostPort } from '../src/util/address';
import { AdsClient } from '../src/xds/ads-client';
import { MAPPING_TYPE_URL } from '../src/xds/type-urls';
import { DeviceConfigurator } from './device-configurator';
import { DeviceInventory, type DeviceRecord, type IdentifiedDevice } from './device-inventory';
import { DeviceWatcher } from './device-watcher';
import { DriverRegistry, type DriverStatus } from './driver-registry';
import type { CaptureSource } from './drivers/media/ffmpeg-args';
import { SIMULATED_PREFIX } from './drivers/simulated-modem';
import { MappingTable } from './mapping-table';
import { LoadReporter } from './load-reporter';
import { Registration, type ReportedDevice } from './registration';
import { SocketPlaneServer, type SocketPlaneServerOptions } from './socket-plane-server';
import { SessionAdmission } from './session-admission';
import { DEFAULT_ONE_HOP_CONNECTIONS, OneHopEndpoints } from './one-hop/one-hop-endpoints';
import { RefusalLog } from '../src/security/refusal-log';
import { memberCredentials, type MemberSecurityOptions, warnInsecure } from '../src/security/member-security';
import { RevocationWatch } from '../src/security/revocation-watch';

export interface AgentOptions {
  hostId: string;
  /** host:port of the control plane's gRPC, or its replicas' separated by commas. */
  controlPlane: string;
  /** Socket plane host:port, e.g. 127.0.0.1:15020 (port 0 allowed). */
  listen: string;
  /** Socket-plane address announced to the control plane; default: the bound listen address. */
  advertise?: string;
  /**
   * `[kind:]GLOB` like /dev/ttyUSB* or hid:/dev/hidraw* (wildcards '*' and '?' in the last path
   * segment only; the kind is inferred from the name when not given).
   */
  watch: string[];
  /** Simulated devices by kind: "modem" → an AT modem at sim:modem0 (the next one sim:modem1). */
  simulate: string[];
  /** Admin host:port. */
  admin: string;
  /** Cameras and microphones: 'device' (default) or 'lavfi', ffmpeg's test sources where there is no capture hardware. */
  captureSource?: CaptureSource;
  /** Where the serial listing reads sysfs and names the ports (default /sys and /dev). */
  serialListingRoots?: { sys: string; dev: string };
  /** How often loads are measured and reported (default 1000). */
  loadIntervalMs?: number;
  /** Joining the mesh: token, identity dir, or --insecure. */
  security?: MemberSecurityOptions;
  /** The socket plane's hardening limits (defaults in socket-plane-server.ts and socket-plane/connection.ts). */
  socketPlaneLimits?: SocketPlaneLimits;
  log: Logger;
}

/** What of the socket plane's hardening an operator sets. */
export type SocketPlaneLimits = Pick<
  SocketPlaneServerOptions,
  'maxConnectionsPerPeer' | 'maxConnections' | 'connectionRatePerPeer' | 'connectionBurstPerPeer' | 'handshakeTimeoutMs' | 'connection'
>;

export interface RunningAgent {
  socketPlaneAddress: string;
  adminAddress: string;
  close(): Promise<void>;
}

const SIMULATED_KINDS = ['modem'];
/** How long a shutting-down agent waits for the control plane to hear its devices are gone (ms). */
const WITHDRAW_TIMEOUT_MS = 2000;

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
  admin_requests_refused: 'Admin HTTP requests refused, per reason (unknown_host: a Host header naming neither loopback nor this server)',
  bytes_to_device: 'Bytes written to devices, per mapping, binding and device',
  bytes_from_device: 'Bytes read from devices, per mapping, binding and device',
  sessions_opened: 'Socket-plane sessions accepted',
  sessions_refused: 'Socket-plane sessions refused, per reason',
  sessions_active: 'Socket-plane sessions open now',
  devices_present: 'Devices present on this host',
  device_events: 'Device events (modem lines, edges, input reports, samples …) sent to sessions, per device and type',
  device_events_dropped: 'Device events not sent because the consumer was not reading, per device',
  serial_changes_pinned: 'Line-setting changes asked by an app and answered with the pinned value instead, per device and setting',
  socket_plane_protocol_errors: 'Socket-plane connections closed for a protocol error',
  rate_limit_dropped_bytes: 'Bytes dropped because a binding with over-limit "drop" was above its rate, per mapping',
  rate_limit_dropped_commands: 'Commands dropped because a binding with over-limit "drop" was above its rate, per mapping',
  binding_bytes_per_second: 'Moving rate of bytes a binding moves to and from its device (1 s window), per mapping',
  binding_commands_per_second: 'Moving rate of commands a binding sends (1 s window), per mapping',
  device_bytes_per_second: 'Moving rate of bytes a device reads and writes (1 s window), per device',
  commands: 'Commands through a shared or time-slice device queue, per device and outcome (answered, timeout, failed, refused)',
  binding_commands: 'Commands a binding sent through a shared or time-slice device queue, per mapping, binding and device',
  command_seconds: 'From a command queued to its answer (or failure), per device',
  command_queue_wait_seconds: 'From a command queued to its dispatch to the device, per device',
  command_queue_depth: 'Commands waiting or in flight on a device queue, per device',
  rate_limit_throttled: 'Times a binding was held back or had data dropped by its rate limits, per mapping, binding and device',
  media_frames_dropped: 'Whole video frames or audio packets of a capture not sent to a session that was not reading, per mapping, binding and device',
  device_presence_changes: 'Devices that appeared (added) or vanished (removed), per device',
  app_connections: 'App connections accepted on one-hop endpoints, per mapping, binding and device',
  app_connections_refused: 'App connections on one-hop endpoints refused before a session, per reason',
  one_hop_endpoints_failed: 'One-hop endpoints the agent could not serve (directory of another owner, unknown owner, bind failure), per mapping',
  app_gone_dropped_bytes: 'Device bytes for a one-hop app that had gone, dropped with their credit returned, per mapping',
  app_gone_sessions_reset: 'One-hop sessions reset because they had not finished after their app went away, per mapping',
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
  parseAddressList(options.controlPlane);
  if (options.advertise !== undefined) parseHostPort(options.advertise);
  const simulated = simulatedNames(options.simulate);
  const security = options.security ?? {};
  if (security.insecure) warnInsecure('agent');
  const credentials = memberCredentials(security, options.controlPlane, { kind: 'host', id: hostId }, log);
  try {
    await credentials.ready;
  } catch (err) {
    credentials.close();
    throw err;
  }
  const channel = credentials.channel ? { credentials: credentials.channel } : {};

  const drivers = new DriverRegistry({
    simulatedModems: [...simulated.keys()],
    ...(options.captureSource ? { captureSource: options.captureSource } : {}),
    ...(options.serialListingRoots ? { serialListingRoots: options.serialListingRoots } : {}),
  });
  const stats = new Stats(STATS_HELP, processStatsOptions());
  const mappings = new MappingTable(hostId);
  const devices = new DeviceInventory((device, onConfiguration) => ({
    path: device.path,
    driver: drivers.require(device),
    stats,
    log: log.child({ device: device.path }),
    onConfiguration,
  }));
  const configurator = new DeviceConfigurator({ mappings, devices, log: log.child({ module: 'configurator' }) });
  const watcher = new DeviceWatcher({ watches: options.watch, log: log.child({ module: 'watcher' }), list: (kind) => drivers.list(kind) });
  const admission = new SessionAdmission({ hostId, mappings, devices, stats, log: log.child({ module: 'sessions' }) });
  const oneHop = new OneHopEndpoints({
    admission,
    refusals: new RefusalLog('sessions_refused', stats, log.child({ module: 'one-hop' })),
    stats,
    log: log.child({ module: 'one-hop' }),
    maxConnections: DEFAULT_ONE_HOP_CONNECTIONS,
  });
  const server = new SocketPlaneServer({
    listen: options.listen,
    hostId,
    mappings,
    devices,
    admission,
    stats,
    log: log.child({ module: 'socket-plane' }),
    ...(credentials.manager ? { tls: credentials.manager } : {}),
    ...options.socketPlaneLimits,
  });
  let socketPlaneAddress: string;
  try {
    socketPlaneAddress = await server.listen();
  } catch (err) {
    credentials.close();
    throw err;
  }
  const advertise = options.advertise ?? socketPlaneAddress;
  // Revoked workload certificates lose their socket-plane connections here, whatever their sidecar does.
  const revocations =
    credentials.channel &&
    new RevocationWatch({
      address: options.controlPlane,
      credentials: credentials.channel,
      onList: (serials) => server.revoke(serials),
      log: log.child({ module: 'revocations' }),
    });

  const registration = new Registration({ address: options.controlPlane, hostId, log: log.child({ module: 'registration' }), ...channel });
  const loadReporter = new LoadReporter({
    address: options.controlPlane,
    hostId,
    ...channel,
    intervalMs: options.loadIntervalMs ?? 1000,
    sample: () =>
      devices.all().map((d) => ({ deviceId: d.device.deviceId, path: d.device.path, bytesPerSecond: d.host.deviceMeter.rate(), bindings: d.host.loads() })),
    stats,
    log: log.child({ module: 'load' }),
  });
  const ads = new AdsClient({
    address: options.controlPlane,
    ...channel,
    identity: { id: hostId, kind: 'agent', metadata: { socketPlane: advertise } },
    handlers: {
      // The configurator's verdict is the answer: a NACK carries every mapping it refused and why.
      // One-hop endpoints follow the table as applied, so an endpoint the agent cannot serve is NACKed too.
      [MAPPING_TYPE_URL]: async (resources, version) => {
        const verdict = await configurator.apply(resources, version);
        const problems = await oneHop.sync(mappings.all());
        if (problems.length > 0) {
          const before = verdict.ack ? `mappings version ${version}:` : `${verdict.error.message};`;
          throw new ValidationError('', `${before} ${problems.join('; ')}`);
        }
        if (!verdict.ack) throw verdict.error;
      },
    },
    log: log.child({ module: 'ads' }),
  });

  let driverStatus: DriverStatus[] = [];
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
          drivers: driverStatus,
          devices: devices.all().map((d) => ({
            ...d.device,
            present: d.present,
            open: d.host.isOpen,
            configuration: d.configuration,
            sessions: d.host.sessions(),
          })),
          registration: registration.status(),
          mappings: mappings.all(),
          oneHop: oneHop.state(),
        }),
      },
      log,
    );
  } catch (err) {
    ads.stop();
    revocations?.close();
    registration.close();
    loadReporter.close();
    await server.close();
    credentials.close();
    throw err;
  }

  const reported = (r: DeviceRecord): ReportedDevice => ({ ...r.device, configuration: r.configuration });
  const countDevices = (): void => stats.set('devices_present', devices.present().length);
  devices.on('added', (r: DeviceRecord) => {
    stats.add('device_presence_changes', 1, { device: r.device.path, change: 'added' });
    registration.set(reported(r));
    countDevices();
  });
  devices.on('changed', (r: DeviceRecord) => {
    if (r.present) registration.set(reported(r));
  });
  devices.on('removed', (r: DeviceRecord) => {
    stats.add('device_presence_changes', 1, { device: r.device.path, change: 'removed' });
    // Another path may hold the same device already (it moved ports within one scan).
    if (!devices.present().some((other) => other.device.deviceId === r.device.deviceId)) registration.remove(r.device.deviceId);
    countDevices();
  });
  countDevices();
  const onboard = (device: IdentifiedDevice): void => {
    if (drivers.forDevice(device)) devices.add(device);
    else log.warn({ path: device.path, kind: device.kind }, 'no driver for this kind of device; not registered');
  };
  watcher.on('added', onboard);
  watcher.on('removed', (device: IdentifiedDevice) => devices.remove(device.path));
  // A control plane that restarted may have lost the register: report again on every new stream.
  ads.on('connected', () => registration.resync());

  for (const [name, kind] of simulated) {
    const path = SIMULATED_PREFIX + name;
    onboard({ path, deviceId: path, kind: 'DEVICE_KIND_SERIAL', capabilities: ['serial', 'modem-lines', 'break'], labels: { simulated: kind } });
  }
  driverStatus = await drivers.status();
  for (const d of driverStatus) if (!d.loaded) log.warn({ kind: d.kind, error: d.error }, 'driver listing unavailable; its devices are identified by path');
  await watcher.start();
  ads.start();
  revocations?.start();
  log.info({ hostId, socketPlane: socketPlaneAddress, advertise, admin: admin.address, watch: options.watch, simulate: options.simulate }, 'agent started');

  let closing: Promise<void> | undefined;
  return {
    socketPlaneAddress,
    adminAddress: admin.address,
    close: () => {
      closing ??= (async () => {
        watcher.stop();
        ads.stop();
        revocations?.close();
        loadReporter.close();
        // The control plane hears that the devices are gone while their sessions end.
        await Promise.all([
          registration.withdraw(WITHDRAW_TIMEOUT_MS),
          Promise.all([server.close(), oneHop.close()]).then(() => devices.close({ code: 'UNAVAILABLE', message: `agent ${hostId} shutting down; its devices are absent` })),
        ]);
        await admin.close();
        credentials.close();
        log.info({ hostId }, 'agent stopped');
      })();
      return closing;
    },
  };
}
