import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startAdminServer } from '../src/admin/admin-server';
import { errorMessage, UnavailableError, ValidationError } from '../src/errors';
import { addReflectionService } from '../src/grpc/reflection-service';
import type { Logger } from '../src/log';
import { serviceDefinition } from '../src/proto/load';
import { processStatsOptions } from '../src/telemetry/process-telemetry';
import { Stats } from '../src/telemetry/stats';
import { formatHostPort, parseHostPort, type HostPort } from '../src/util/address';
import { AdsServer } from './ads-server';
import type { AdaptationController } from './bandwidth/adaptation-controller';
import { AdaptationLoop } from './bandwidth/adaptation-loop';
import { LoadReports } from './bandwidth/load-reports';
import { buildOverview } from './dashboard/build-overview';
import { DashboardRoutes } from './dashboard/dashboard-routes';
import { EtcdStateStore, type EtcdStateStoreOptions } from './etcd-state-store';
import { type RunningWebhookServer, startWebhookServer, type WebhookServerOptions } from './injection/webhook-server';
import { ProxyStatusTracker } from './proxy-status';
import { bindingsService } from './services/bindings-service';
import { registryService } from './services/registry-service';
import { statusService } from './services/status-service';
import { SnapshotCache } from './snapshot-cache';
import { ControlPlaneState } from './state';
import type { StateBackend } from './state-backend';
import { StateStore } from './state-store';

export interface ControlPlaneOptions {
  listen: string /* host:port gRPC, e.g. 127.0.0.1:15010, port 0 allowed */;
  admin: string /* host:port */;
  dataDir: string;
  /** Keep the state in etcd instead of dataDir, shared with other replicas of this control plane. */
  etcd?: EtcdStateStoreOptions;
  log: Logger;
  /** The bandwidth controller's control cycle (default 1 s). */
  adaptIntervalMs?: number;
  /** The bandwidth loop's tuning, for tests; the defaults suit an agent reporting every second. */
  adaptation?: { controller?: AdaptationController; settleMs?: number; staleAfterMs?: number };
  /** The sidecar injection webhook (HTTPS), for Kubernetes; off when absent. */
  webhook?: Omit<WebhookServerOptions, 'log'>;
}

export interface RunningControlPlane {
  grpcAddress: string;
  adminAddress: string;
  /** host:port of the injection webhook, when it serves. */
  webhookAddress?: string;
  close(): Promise<void>;
}

const SERVICES = {
  'devicemesh.v1.Registry': 'registry',
  'devicemesh.v1.Bindings': 'bindings',
  'devicemesh.v1.Status': 'status',
  'envoy.service.discovery.v3.AggregatedDiscoveryService': 'ads',
} as const;

/** Loads the data directory, then serves gRPC (with reflection) and the admin interface. */
export async function startControlPlane(options: ControlPlaneOptions): Promise<RunningControlPlane> {
  const { log } = options;
  const listen = flag('listen', options.listen);
  const adminListen = flag('admin', options.admin);
  const stats = new Stats(STATS_HELP, processStatsOptions());
  const adaptIntervalMs = options.adaptIntervalMs ?? 1000;
  if (!Number.isFinite(adaptIntervalMs) || adaptIntervalMs <= 0) {
    throw new ValidationError('--adapt-interval', `${adaptIntervalMs} ms is not a positive duration`);
  }

  const backend: StateBackend = options.etcd ? new EtcdStateStore(options.etcd) : new StateStore(options.dataDir);
  const state = await ControlPlaneState.open(backend, log, { writes: stats.counter('state_writes') }).catch(async (err: unknown) => {
    await backend.close?.();
    throw err;
  });
  const cache = new SnapshotCache();
  const proxies = new ProxyStatusTracker();
  const ads = new AdsServer({ cache, proxies, hosts: state, stats, log });
  const gauges = (): void => {
    stats.set('endpoints', state.endpointCount());
    stats.set('bindings', state.bindingStatuses().length);
    stats.set('mappings', state.mappings().length);
  };
  cache.update(state.mappings(), state.version(), new Set(['restart']));
  gauges();
  stats.set('connected_proxies', 0);
  state.onCommit((mappings, version, kinds) => {
    ads.notify(cache.update(mappings, version, kinds));
    gauges();
  });

  const loads = new LoadReports();
  const adaptation = new AdaptationLoop({ state, reports: loads, stats, log, intervalMs: adaptIntervalMs, ...options.adaptation });

  const server = new grpc.Server();
  const implementations = {
    registry: registryService(state, loads, log),
    bindings: bindingsService(state, log),
    status: statusService(proxies, log),
    ads: ads.implementation(),
  };
  for (const [name, key] of Object.entries(SERVICES)) server.addService(serviceDefinition(name), implementations[key]);
  addReflectionService(server, Object.keys(SERVICES));
  const port = await bind(server, listen);
  const grpcAddress = formatHostPort({ host: listen.host, port });

  let serving = true;
  const stopGrpc = async (): Promise<void> => {
    serving = false;
    await adaptation.close();
    ads.close();
    await new Promise<void>((resolve) => {
      // Unary calls get a moment to finish; streams were ended above.
      const force = setTimeout(() => server.forceShutdown(), 2000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    await state.idle();
    await backend.close?.();
  };

  const dashboard = new DashboardRoutes({
    overview: () =>
      buildOverview({
        version: state.version(),
        hosts: state.hosts(),
        endpoints: state.endpoints(),
        bindings: state.bindingStatuses(),
        mappings: state.mappings(),
        proxies: proxies.list(),
        adaptation: adaptation.events.list(),
        load: (hostId, mappingId) => {
          const host = loads.fresh(hostId, LOAD_REPORT_FRESH_MS);
          const report = host?.bindings.get(mappingId);
          return host && report ? { report, receivedAt: host.receivedAt } : undefined;
        },
        now: Date.now(),
      }),
    adaptation: () => ({ intervalMs: adaptIntervalMs, changes: adaptation.events.list() }),
    staticDir: path.resolve(__dirname, '..', 'dashboard'),
    pushIntervalMs: 1000,
  });
  state.onCommit(() => dashboard.changed());

  const admin = await startAdminServer(
    formatHostPort(adminListen),
    {
      ready: () => serving,
      stats,
      configDump: () => ({
        version: state.version(),
        bindings: state.bindingStatuses(),
        policies: state.policies(),
        endpoints: state.endpoints(),
        hosts: state.hosts(),
        mappings: state.mappings(),
        proxies: proxies.list(),
      }),
      extra: (req, res) => dashboard.handle(req, res),
    },
    log,
  ).catch(async (err: unknown) => {
    await stopGrpc();
    throw new UnavailableError(`cannot serve the admin interface on ${options.admin}: ${errorMessage(err)}`, { cause: err });
  });
  let webhook: RunningWebhookServer | undefined;
  if (options.webhook) {
    webhook = await startWebhookServer({ ...options.webhook, log }).catch(async (err: unknown) => {
      await stopGrpc();
      await admin.close();
      throw err;
    });
  }
  adaptation.start();
  log.info({ grpc: grpcAddress, admin: admin.address, store: backend.description, version: state.version(), adaptIntervalMs }, 'control plane serving');

  return {
    grpcAddress,
    adminAddress: admin.address,
    ...(webhook ? { webhookAddress: webhook.address } : {}),
    close: async (): Promise<void> => {
      await stopGrpc();
      dashboard.close();
      await webhook?.close();
      await admin.close();
      log.info({ version: state.version() }, 'control plane stopped');
    },
  };
}

function flag(name: string, value: string): HostPort {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new ValidationError(`--${name}`, errorMessage(err));
  }
}

function bind(server: grpc.Server, address: HostPort): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(formatHostPort(address), grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(new UnavailableError(`cannot serve gRPC on ${formatHostPort(address)}: ${err.message}`, { cause: err }));
      else resolve(port);
    });
  });
}

/** A binding's rates older than this are not shown: its agent stopped reporting it (ms). */
const LOAD_REPORT_FRESH_MS = 5000;

const STATS_HELP: Readonly<Record<string, string>> = {
  xds_pushes: 'Discovery responses sent, by type URL',
  xds_acks: 'Discovery responses acknowledged, by type URL',
  xds_nacks: 'Discovery responses rejected, by node',
  connected_proxies: 'Open discovery streams',
  proxy_acks: 'Discovery responses acknowledged, by node',
  endpoints: 'Physical endpoints in the register',
  bindings: 'Bindings declared',
  mappings: 'Mappings generated',
  state_writes: 'Durable writes of the control-plane state (a snapshot or a log record); a group commit writes a batch of changes at once',
};
