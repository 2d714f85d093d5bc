import { startAdminServer } from '../src/admin/admin-server';
import type { Logger } from '../src/log';
import { processStatsOptions } from '../src/telemetry/process-telemetry';
import { Stats } from '../src/telemetry/stats';
import { parseAddressList } from '../src/util/address';
import { AdsClient } from '../src/xds/ads-client';
import { MAPPING_TYPE_URL } from '../src/xds/type-urls';
import { AgentPool } from './agent-pool';
import { RoamingMoves } from './roaming-moves';
import type { AppListenerLimits } from './app-connection-limits';
import { VirtualDevices } from './virtual-devices';
import { memberCredentials, type MemberSecurityOptions, warnInsecure } from '../src/security/member-security';

export interface SidecarOptions {
  workloadId: string;
  /** host:port of the control plane's discovery service, or its replicas' separated by commas. */
  controlPlane: string;
  /** host:port of the admin interface. */
  admin: string;
  /** How long close() lets app connections finish before it ends them (default 10 s). */
  drainTimeoutMs?: number;
  /** Connection limits of every virtual device's listener (defaults in app-connection-limits.ts). */
  appLimits?: AppListenerLimits;
  /** Joining the mesh: token, identity dir, or --insecure. */
  security?: MemberSecurityOptions;
  log: Logger;
}

export interface RunningSidecar {
  adminAddress: string;
  close(): Promise<void>;
}

interface Nack {
  typeUrl: string;
  version: string;
  message: string;
  at: string;
}

const STATS_HELP: Readonly<Record<string, string>> = {
  admin_requests_refused: 'Admin HTTP requests refused, per reason (unknown_host: a Host header naming neither loopback nor this server)',
  app_connections: 'App connections accepted by a virtual device',
  app_connections_refused: 'App connections closed because the agent refused or could not be reached',
  bytes_app_to_device: 'Bytes read from apps and relayed towards the device',
  bytes_device_to_app: 'Bytes relayed from the device to apps',
  listeners: 'Virtual device listeners currently bound',
  roaming_holds: 'App connections of a roaming binding held because their device went away (docs/roaming.md)',
  roaming_held_bytes: 'Bytes an app sent while held for its moving device',
  roaming_resumes: 'Held app connections resumed on the gateway the device moved to',
  roaming_hold_expiries: 'Held app connections closed because the device did not come back within roamingHoldMs (or the app overran the held writes)',
  roaming_held_bytes_dropped: 'Held bytes dropped because the hold ended without a device (expired, or the app went away)',
};

/**
 * Runs a sidecar: subscribes to the workload's mappings over ADS and serves each as a virtual
 * device. Starts even while the control plane is unreachable (the ADS client retries with
 * backoff); /ready turns 200 once a first mapping set has been applied.
 */
export async function startSidecar(options: SidecarOptions): Promise<RunningSidecar> {
  const { workloadId, log } = options;
  parseAddressList(options.controlPlane);
  const security = options.security ?? {};
  if (security.insecure) warnInsecure('sidecar');
  // Joining goes on while the admin interface already answers (not ready).
  const credentials = memberCredentials(security, options.controlPlane, { kind: 'workload', id: workloadId }, log);
  const stats = new Stats(STATS_HELP, processStatsOptions());
  stats.set('listeners', 0);
  const pool = new AgentPool(log, credentials.manager ? { tls: credentials.manager } : {});
  const moves = new RoamingMoves();
  const devices = new VirtualDevices({ workloadId, pool, stats, log, moves, ...(options.appLimits ? { limits: options.appLimits } : {}) });

  let applied = false;
  let draining = false;
  let connected = false;
  let lastNack: Nack | null = null;

  const ads = new AdsClient({
    address: options.controlPlane,
    ...(credentials.channel ? { credentials: credentials.channel } : {}),
    identity: { id: workloadId, kind: 'sidecar' },
    log,
    handlers: {
      [MAPPING_TYPE_URL]: async (resources) => {
        try {
          await devices.apply(resources);
        } finally {
          // A partly applied set still serves: readiness means "has a configuration", not "all of it".
          applied = true;
        }
      },
    },
  });
  ads.on('connected', () => {
    connected = true;
    log.info({ controlPlane: ads.address() }, 'discovery stream connected');
  });
  ads.on('disconnected', () => {
    connected = false;
  });
  ads.on('applied', (typeUrl: string, version: string) => log.info({ typeUrl, version }, 'configuration applied (ACK)'));
  ads.on('rejected', (typeUrl: string, version: string, message: string) => {
    lastNack = { typeUrl, version, message, at: new Date().toISOString() };
  });

  const admin = await startAdminServer(
    options.admin,
    {
      ready: () => applied && !draining,
      // Live connections' byte counts are read from their sockets only when someone looks.
      get stats(): Stats {
        devices.flushStats();
        return stats;
      },
      configDump: () => ({
        workloadId,
        controlPlane: options.controlPlane,
        controlPlaneInUse: ads.address(),
        controlPlaneConnected: connected,
        versions: ads.versions(),
        mappings: devices.state(),
        roamingMoves: moves.list(),
        lastNack,
      }),
    },
    log,
  );
  try {
    await credentials.ready;
  } catch (err) {
    pool.close();
    await admin.close();
    credentials.close();
    throw err;
  }
  ads.start();

  let closing: Promise<void> | undefined;
  return {
    adminAddress: admin.address,
    close: () => {
      closing ??= (async () => {
        // As Envoy drains: not ready any more, no new connections, live ones get time to finish.
        draining = true;
        ads.stop();
        const drainMs = options.drainTimeoutMs ?? 10_000;
        log.info({ drainMs, connections: devices.state().reduce((n, d) => n + d.connections, 0) }, 'draining');
        await devices.drain(drainMs);
        pool.close();
        await admin.close();
        credentials.close();
      })();
      return closing;
    },
  };
}
