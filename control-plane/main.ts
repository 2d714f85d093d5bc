import * as fs from 'node:fs';
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
import { KubernetesController, type KubernetesControllerOptions } from './kubernetes/kubernetes-controller';
import { buildOverview } from './dashboard/build-overview';
import { DashboardRoutes } from './dashboard/dashboard-routes';
import { lockDataDir } from './data-dir-lock';
import { EtcdStateStore, type EtcdStateStoreOptions } from './etcd-state-store';
import { type RunningWebhookServer, startWebhookServer, type WebhookServerOptions } from './injection/webhook-server';
import { ProxyStatusTracker } from './proxy-status';
import { bindingsService } from './services/bindings-service';
import { registryService } from './services/registry-service';
import { AccessControl, sameMember } from './security/access-control';
import { type CaFiles, openCertificateAuthority } from './security/certificate-authority';
import { OperatorCredential } from './security/operator-credential';
import { ServingCertificates } from './security/serving-certificates';
import { IdentityRegistry } from './security/identity-registry';
import { DEFAULT_TOKEN_TTL_MS } from './security/bootstrap-tokens';
import { identityService } from './services/identity-service';
import { statusService } from './services/status-service';
import { checkTrustDomain, DEFAULT_TRUST_DOMAIN } from '../src/security/spiffe-id';
import { RoamingMoves } from './roaming-moves';
import { SnapshotCache } from './snapshot-cache';
import { ControlPlaneState } from './state';
import type { StateBackend } from './state-backend';
import { StateStore } from './state-store';
import { clientCredentialFiles } from '../src/security/client-credential-files';
import { JoinThrottle, throttledJoin } from './security/join-throttle';
import { localHostFacts, type ServedNames, servedNames } from '../src/security/served-names';

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
  /** Plaintext gRPC without authentication (the --insecure flag). */
  insecure?: boolean;
  /** Default devicemesh.local. */
  trustDomain?: string;
  /** An external CA (maybe an intermediate) instead of the one in `<dataDir>/ca`. */
  externalCa?: CaFiles;
  /** Lifetime of the certificates issued (default 1 h). */
  certTtlMs?: number;
  /** DNS names and IP addresses the serving certificate names beside those of `listen` (the --san flag). */
  san?: readonly string[];
  /** Reconcile Binding and DevicePolicy custom resources of this cluster (the --kubernetes flag). */
  kubernetes?: Omit<KubernetesControllerOptions, 'state' | 'stats' | 'log'>;
}

/** What clients of a secure control plane need, and a way to mint tokens in-process (the demo, tests). */
export interface ControlPlaneSecurity {
  /** The trust bundle's file and text. */
  caFile: string;
  caPem: string;
  operatorTokenFile: string;
  trustDomain: string;
  /** Single-use unless `reusable`. */
  createToken(kind: 'host' | 'workload', id: string, ttlMs?: number, reusable?: boolean): string;
}

export interface RunningControlPlane {
  grpcAddress: string;
  adminAddress: string;
  /** host:port of the injection webhook, when it serves. */
  webhookAddress?: string;
  /** Undefined when running insecure. */
  security: ControlPlaneSecurity | undefined;
  close(): Promise<void>;
}

const SERVICES = {
  'devicemesh.v1.Identity': 'identity',
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

  const certTtlMs = options.certTtlMs ?? 3600_000;
  if (!Number.isFinite(certTtlMs) || certTtlMs < 2000) throw new ValidationError('--cert-ttl', `${certTtlMs} ms is too short (at least 2s)`);
  const trustDomain = checkTrustDomain(options.trustDomain ?? DEFAULT_TRUST_DOMAIN, '--trust-domain');
  const names = servedNames(listen.host, options.san ?? [], localHostFacts());
  const lock = lockDataDir(options.dataDir);
  const unlock = (err: unknown): never => {
    lock.release();
    throw err;
  };
  // Access control asks the discovery server which agent holds a host (it is made after it).
  let ads: AdsServer | undefined;
  const secure = options.insecure
    ? undefined
    : await openSecurity(options.dataDir, trustDomain, options.externalCa, certTtlMs, names, stats, log, (id) => ads?.hostOwner(id)).catch(unlock);

  const backend: StateBackend = options.etcd ? new EtcdStateStore(options.etcd) : new StateStore(options.dataDir);
  const closeAndUnlock = async (err: unknown): Promise<never> => {
    await backend.close?.();
    return unlock(err);
  };
  const state = await ControlPlaneState.open(backend, log, { writes: stats.counter('state_writes') }).catch(closeAndUnlock);
  const cache = new SnapshotCache();
  const proxies = new ProxyStatusTracker();
  ads = new AdsServer({
    cache,
    proxies,
    hosts: state,
    stats,
    log,
    ...(secure
      ? {
          checkNode: (call, kind, id, socketPlane) => secure.access.checkNode(call, kind, id, socketPlane),
          sameMember: (a: string, b: string) => sameMember(secure.identities, a, b),
        }
      : {}),
  });
  // A revoked member's discovery streams end now; its later calls are refused by access control.
  const unsubscribeRevocations = secure?.identities.onRevoked((serials) => ads.closeRevoked(serials));
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
  const roamingMoves = new RoamingMoves();
  const bindingNames = (): Set<string> => new Set(state.bindingStatuses().map((s) => s.binding?.name ?? ''));
  roamingMoves.observe(state.mappings(), bindingNames(), Date.now());
  state.onCommit((mappings) => {
    for (const move of roamingMoves.observe(mappings, bindingNames(), Date.now())) log.info(move, 'roaming binding moved to another gateway');
  });

  const loads = new LoadReports();
  const adaptation = new AdaptationLoop({ state, reports: loads, stats, log, intervalMs: adaptIntervalMs, ...options.adaptation });

  const server = new grpc.Server();
  const implementations: Record<(typeof SERVICES)[keyof typeof SERVICES], grpc.UntypedServiceImplementation> = {
    identity: secure ? withJoinThrottle(identityService({ ca: secure.ca, access: secure.access, certTtlMs, log }, secure.identities), stats) : {},
    registry: registryService(state, loads, log),
    bindings: bindingsService(state, log),
    status: statusService(proxies, log),
    ads: ads.implementation(),
  };
  const served = Object.entries(SERVICES).filter(([name]) => secure || name !== 'devicemesh.v1.Identity');
  for (const [name, key] of served) {
    const definition = serviceDefinition(name);
    server.addService(definition, secure ? secure.access.guard(definition, implementations[key]) : implementations[key]);
  }
  addReflectionService(server, served.map(([name]) => name));
  let port: number;
  try {
    port = await bind(server, listen, secure ? secure.serving.credentials() : grpc.ServerCredentials.createInsecure());
    secure?.serving.refresh();
  } catch (err) {
    secure?.serving.close();
    return closeAndUnlock(err);
  }
  const grpcAddress = formatHostPort({ host: listen.host, port });

  const kubernetes = options.kubernetes ? new KubernetesController({ ...options.kubernetes, state, stats, log: log.child({ module: 'kubernetes' }) }) : undefined;
  let serving = true;
  const stopGrpc = async (): Promise<void> => {
    serving = false;
    await kubernetes?.close();
    await adaptation.close();
    unsubscribeRevocations?.();
    ads.close();
    await new Promise<void>((resolve) => {
      // Unary calls get a moment to finish; streams were ended above.
      const force = setTimeout(() => server.forceShutdown(), 2000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    secure?.serving.close();
    await state.idle();
    await backend.close?.();
    lock.release();
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
        roamingMoves: roamingMoves.list(),
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
  if (kubernetes) {
    // Listed before the control plane counts as started; a watch that breaks later is retried, never fatal.
    await kubernetes.start().catch(async (err: unknown) => {
      await stopGrpc();
      dashboard.close();
      await webhook?.close();
      await admin.close();
      throw new UnavailableError(`cannot list Kubernetes custom resources: ${errorMessage(err)}`, { cause: err });
    });
  }
  log.info(
    { grpc: grpcAddress, admin: admin.address, store: backend.description, version: state.version(), adaptIntervalMs, tls: secure !== undefined, trustDomain },
    'control plane serving',
  );

  return {
    grpcAddress,
    adminAddress: admin.address,
    ...(webhook ? { webhookAddress: webhook.address } : {}),
    security: secure && {
      caFile: secure.caFile,
      caPem: secure.ca.bundlePem(),
      operatorTokenFile: secure.operatorTokenFile,
      trustDomain,
      createToken: (kind, id, ttlMs = DEFAULT_TOKEN_TTL_MS, reusable = false) =>
        secure.identities.createToken({ kind, id }, { ttlMs, reusable, allowedAddresses: [] }).token,
    },
    close: async (): Promise<void> => {
      await stopGrpc();
      dashboard.close();
      await webhook?.close();
      await admin.close();
      log.info({ version: state.version() }, 'control plane stopped');
    },
  };
}

/** The Identity service with its Join slowed per source after failures (control-plane/security/join-throttle.ts). */
function withJoinThrottle(identity: grpc.UntypedServiceImplementation, stats: Stats): grpc.UntypedServiceImplementation {
  return { ...identity, Join: throttledJoin(identity.Join as grpc.handleUnaryCall<unknown, unknown>, new JoinThrottle(), stats) };
}

function flag(name: string, value: string): HostPort {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new ValidationError(`--${name}`, errorMessage(err));
  }
}

/** The CA, the serving certificate, the tokens and the operator credential of a secure control plane. */
async function openSecurity(
  dataDir: string,
  trustDomain: string,
  externalCa: CaFiles | undefined,
  certTtlMs: number,
  names: ServedNames,
  stats: Stats,
  log: Logger,
  hostOwner: (hostId: string) => string | undefined,
) {
  const { ca, certFile, created } = await openCertificateAuthority({ dataDir, trustDomain, ...(externalCa ? { external: externalCa } : {}) });
  if (created) log.info({ caFile: certFile }, 'created the mesh CA');
  const operator = OperatorCredential.open(dataDir);
  if (operator.created) log.info({ file: operator.credential.tokenFile }, 'wrote the operator credential');
  const identities = new IdentityRegistry(dataDir, ca);
  const access = new AccessControl({ ca, operator: operator.credential, stats, log, certificates: identities, hostOwner });
  const serving = new ServingCertificates(ca, { trustDomain, kind: 'control-plane', id: '' }, certTtlMs, names, log);
  await serving.start();
  // The bundle clients trust, next to the data even when the CA is external.
  const { caFile } = clientCredentialFiles(dataDir);
  fs.mkdirSync(path.dirname(caFile), { recursive: true });
  fs.writeFileSync(caFile, ca.bundlePem());
  return { ca, caFile, operatorTokenFile: operator.credential.tokenFile, identities, access, serving };
}

function bind(server: grpc.Server, address: HostPort, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(formatHostPort(address), credentials, (err, port) => {
      if (err) reject(new UnavailableError(`cannot serve gRPC on ${formatHostPort(address)}: ${err.message}`, { cause: err }));
      else resolve(port);
    });
  });
}

/** A binding's rates older than this are not shown: its agent stopped reporting it (ms). */
const LOAD_REPORT_FRESH_MS = 5000;

const STATS_HELP: Readonly<Record<string, string>> = {
  joins_throttled: 'Identity/Join attempts slowed after failed joins from their address, by outcome (delayed, refused)',
  admin_requests_refused: 'Admin HTTP requests refused, per reason (unknown_host: a Host header naming neither loopback nor this server)',
  xds_pushes: 'Discovery responses sent, by type URL',
  xds_acks: 'Discovery responses acknowledged, by type URL',
  xds_nacks: 'Discovery responses rejected, by node',
  connected_proxies: 'Open discovery streams',
  proxy_acks: 'Discovery responses acknowledged, by node',
  endpoints: 'Physical endpoints in the register',
  bindings: 'Bindings declared',
  mappings: 'Mappings generated',
  auth_refused: 'Control-plane calls refused by authentication or authorization, per reason (no_client_certificate, bad_certificate, wrong_identity, no_operator_credential, bad_operator_credential, bad_token, unknown_method, revoked_certificate, address_not_allowed, not_host_owner)',
  agent_streams_refused: 'Agent discovery streams refused because the host already has a live agent, per reason',
  agent_streams_replaced: 'Agent discovery streams replaced by a newer stream of the same agent (one join and its renewals)',
  xds_streams_revoked: 'Discovery streams closed because their certificate was revoked',
  kubernetes_reconciles: 'Binding and DevicePolicy custom resources reconciled, by kind and result (applied, refused, deleted)',
  kubernetes_reconcile_retries: 'Custom resource changes the control plane could not take at once and tried again',
  kubernetes_status_writes: 'Status subresource writes, by kind (only the Lease holder writes)',
  kubernetes_status_write_errors: 'Status writes the API server refused or that failed (the next change writes again)',
  kubernetes_status_writer: '1 while this replica holds the status-writer Lease',
  kubernetes_events: 'Kubernetes Events recorded, by kind and reason (Refused, DeleteRefused)',
  kubernetes_event_errors: 'Kubernetes Events that could not be recorded',
  kubernetes_watch_starts: 'List/watch (re)starts of the custom resource informers, by kind',
  kubernetes_watch_errors: 'List/watch failures, by kind (retried with backoff)',
  state_writes: 'Durable writes of the control-plane state (a snapshot or a log record); a group commit writes a batch of changes at once',
};
