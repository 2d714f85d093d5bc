import type { SocketPlaneLimits } from '../../agent/main';
import {
  DEFAULT_CONNECTION_BURST_PER_PEER,
  DEFAULT_CONNECTION_RATE_PER_PEER,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_PEER,
} from '../../agent/socket-plane-server';
import type { ControlPlaneOptions } from '../../control-plane/main';
import {
  type AppListenerLimits,
  DEFAULT_APP_CONNECTION_BURST_PER_PEER,
  DEFAULT_APP_CONNECTION_RATE_PER_PEER,
  DEFAULT_APP_CONNECTIONS,
  DEFAULT_APP_CONNECTIONS_PER_PEER,
  DEFAULT_GRPC_PREFACE_TIMEOUT_MS,
} from '../../sidecar/app-connection-limits';
import { DEFAULT_SUBNEGOTIATION_TIMEOUT_MS } from '../../src/bridge/session-bridge';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_PREFACE_TIMEOUT_MS } from '../../src/socket-plane/connection';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { errorMessage, ValidationError } from '../../src/errors';
import { createLogger, LOG_FORMAT_WORDS, openLogOutput } from '../../src/log';
import { startProcessTelemetry, stopProcessTelemetry } from '../../src/telemetry/process-telemetry';
import { CONFIG_FLAG } from '../config-file';
import { type MemberSecurityOptions, warnInsecure } from '../../src/security/member-security';
import { countValue, durationMs, type FlagSpec, parseFlags } from '../flags';

/** OpenTelemetry export, the same on every process. */
const TELEMETRY_FLAGS: readonly FlagSpec[] = [
  {
    name: 'otlp-endpoint',
    kind: 'string',
    help: 'OTLP/HTTP collector base URL for traces and metrics, e.g. http://127.0.0.1:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT; unset: no export)',
  },
  {
    name: 'trace-sample-ratio',
    kind: 'string',
    default: '1',
    help: 'share of new traces sampled, 0..1 (a sidecar\'s decision is followed by the agent)',
  },
];

/** How a process writes its logs, the same on every process. */
export const LOG_FLAGS: readonly FlagSpec[] = [
  {
    name: 'log-format',
    kind: 'string',
    default: 'auto',
    help: `log lines on stderr: ${LOG_FORMAT_WORDS.join(' | ')} (auto: one short coloured line per event on a terminal, JSON otherwise)`,
  },
];

/** Starts the process's OTLP export from its telemetry flags. */
function startTelemetry(service: string, values: Readonly<Record<string, string>>): void {
  const endpoint = values['otlp-endpoint'] ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const ratio = Number(values['trace-sample-ratio']);
  if (values['trace-sample-ratio']?.trim() === '' || Number.isNaN(ratio)) {
    throw new ValidationError('--trace-sample-ratio', `"${values['trace-sample-ratio']}" is not a number`);
  }
  startProcessTelemetry({ service, sampleRatio: ratio, ...(endpoint ? { otlpEndpoint: endpoint } : {}) });
}

export const CONTROL_PLANE_FLAGS: readonly FlagSpec[] = [
  { name: 'listen', kind: 'address', default: '127.0.0.1:15010', help: 'gRPC address (discovery, registry, bindings, status)' },
  { name: 'admin', kind: 'address', default: '127.0.0.1:15000', help: 'admin HTTP address' },
  { name: 'data-dir', kind: 'string', default: './devicemesh-data', help: 'where the state is persisted' },
  { name: 'adapt-interval', kind: 'duration', default: '1s', help: 'the bandwidth controller\'s control cycle (adaptive limits of devices with a capacity)' },
  ...TELEMETRY_FLAGS,
  ...LOG_FLAGS,
  {
    name: 'etcd-endpoints',
    kind: 'list',
    help: 'keep the state in etcd (client URLs, e.g. http://10.0.0.5:2379) instead of --data-dir, shared by every replica on it (repeatable)',
  },
  { name: 'etcd-prefix', kind: 'string', default: '/devicemesh/', help: 'etcd key prefix of this mesh\'s state' },
  { name: 'webhook-listen', kind: 'address', help: 'HTTPS address of the Kubernetes sidecar injection webhook (POST /inject); off when unset' },
  { name: 'webhook-cert', kind: 'string', help: 'the webhook\'s TLS certificate (PEM file)' },
  { name: 'webhook-key', kind: 'string', help: 'the webhook\'s TLS private key (PEM file)' },
  { name: 'inject-image', kind: 'string', default: 'devicemesh:0.1.0', help: 'image of injected sidecars' },
  {
    name: 'inject-control-plane',
    kind: 'string',
    default: 'devicemesh-control-plane.devicemesh-system.svc:15010',
    help: 'control-plane address injected sidecars dial',
  },
  { name: 'inject-ca-configmap', kind: 'string', default: 'devicemesh-ca', help: 'ConfigMap with the mesh CA (ca.crt) mounted into injected sidecars' },
  { name: 'trust-domain', kind: 'string', default: 'devicemesh.local', help: 'the SPIFFE trust domain of the mesh\'s identities' },
  { name: 'ca-cert', kind: 'string', help: 'an external CA certificate (PEM; an intermediate followed by its chain to the root) instead of <data-dir>/ca' },
  { name: 'ca-key', kind: 'string', help: 'the private key of --ca-cert' },
  { name: 'cert-ttl', kind: 'duration', default: '1h', help: 'lifetime of the certificates issued to agents, sidecars and the control plane itself' },
  {
    name: 'san',
    kind: 'list',
    help: 'a DNS name or IP address the serving certificate names beside those of --listen, localhost and the host name (repeatable)',
  },
  { name: 'insecure', kind: 'boolean', help: 'plaintext gRPC, no authentication (prints a warning)' },
  { name: 'kubernetes', kind: 'boolean', help: 'reconcile the cluster\'s Binding and DevicePolicy custom resources and write their status (in-cluster config, or --kubeconfig)' },
  { name: 'kubeconfig', kind: 'string', help: 'kubeconfig file for --kubernetes (default: the in-cluster service account, else $KUBECONFIG or ~/.kube/config)' },
  { name: 'kubernetes-namespace', kind: 'string', help: 'namespace of the status-writer Lease (default: $POD_NAMESPACE, else devicemesh-system)' },
  { name: 'kubernetes-identity', kind: 'string', help: 'this replica\'s name in the Lease (default: $POD_NAME, else the host name)' },
  CONFIG_FLAG,
];

/** How agents and sidecars join the mesh. */
const MEMBER_FLAGS: readonly FlagSpec[] = [
  { name: 'token', kind: 'string', secret: { safer: '--token-file FILE' }, help: 'join token (devicemesh token create …); prefer --token-file or DEVICEMESH_TOKEN' },
  { name: 'token-file', kind: 'string', help: 'file holding the join token, read on each join attempt' },
  { name: 'identity-dir', kind: 'string', help: 'where the key and certificate are kept; a still-valid certificate needs no token on restart' },
  { name: 'insecure', kind: 'boolean', help: 'plaintext, no authentication (prints a warning)' },
];

/** A default duration as a flag spells it. */
const seconds = (ms: number): string => `${ms / 1000}s`;

/** The socket plane's hardening (docs/security.md, Hardening). */
const SOCKET_PLANE_LIMIT_FLAGS: readonly FlagSpec[] = [
  { name: 'max-connections-per-peer', kind: 'count', default: String(DEFAULT_MAX_CONNECTIONS_PER_PEER), help: 'socket plane: most connections one address may hold; more are refused on accept' },
  { name: 'max-connections', kind: 'count', default: String(DEFAULT_MAX_CONNECTIONS), help: 'socket plane: most connections in all' },
  { name: 'connection-rate', kind: 'count', default: String(DEFAULT_CONNECTION_RATE_PER_PEER), help: 'socket plane: new connections a second from one address, sustained (0: no limit)' },
  { name: 'connection-burst', kind: 'count', default: String(DEFAULT_CONNECTION_BURST_PER_PEER), help: 'socket plane: new connections from one address at once before --connection-rate applies' },
  { name: 'handshake-timeout', kind: 'duration', default: seconds(DEFAULT_HANDSHAKE_TIMEOUT_MS), help: 'socket plane: a TLS handshake must be complete this long after the accept' },
  { name: 'preface-timeout', kind: 'duration', default: seconds(DEFAULT_PREFACE_TIMEOUT_MS), help: 'socket plane: the preface must have arrived this long after the handshake' },
  { name: 'idle-timeout', kind: 'duration', default: seconds(DEFAULT_IDLE_TIMEOUT_MS), help: 'socket plane: a connection without sessions is closed after this' },
];

/** The limits of every virtual device's listener (docs/security.md, Hardening). */
const APP_LIMIT_FLAGS: readonly FlagSpec[] = [
  { name: 'app-connections-per-peer', kind: 'count', default: String(DEFAULT_APP_CONNECTIONS_PER_PEER), help: 'most connections one app address may hold on one virtual device' },
  { name: 'app-connections', kind: 'count', default: String(DEFAULT_APP_CONNECTIONS), help: 'most connections on one virtual device' },
  { name: 'app-connection-rate', kind: 'count', default: String(DEFAULT_APP_CONNECTION_RATE_PER_PEER), help: 'new connections a second from one app address, sustained (0: no limit)' },
  { name: 'app-connection-burst', kind: 'count', default: String(DEFAULT_APP_CONNECTION_BURST_PER_PEER), help: 'new connections from one app address at once before --app-connection-rate applies' },
  { name: 'subnegotiation-timeout', kind: 'duration', default: seconds(DEFAULT_SUBNEGOTIATION_TIMEOUT_MS), help: 'RFC 2217: an IAC SB must end with IAC SE within this' },
  { name: 'grpc-preface-timeout', kind: 'duration', default: seconds(DEFAULT_GRPC_PREFACE_TIMEOUT_MS), help: 'gRPC: an app connection must send its HTTP/2 preface within this' },
];

export function socketPlaneLimits(values: Readonly<Record<string, string>>): SocketPlaneLimits {
  return {
    maxConnectionsPerPeer: countValue('max-connections-per-peer', values['max-connections-per-peer'] as string),
    maxConnections: countValue('max-connections', values['max-connections'] as string),
    connectionRatePerPeer: countValue('connection-rate', values['connection-rate'] as string),
    connectionBurstPerPeer: countValue('connection-burst', values['connection-burst'] as string),
    handshakeTimeoutMs: durationMs('handshake-timeout', values['handshake-timeout'] as string),
    connection: {
      prefaceTimeoutMs: durationMs('preface-timeout', values['preface-timeout'] as string),
      idleTimeoutMs: durationMs('idle-timeout', values['idle-timeout'] as string),
    },
  };
}

export function appLimits(values: Readonly<Record<string, string>>): AppListenerLimits {
  return {
    maxConnectionsPerPeer: countValue('app-connections-per-peer', values['app-connections-per-peer'] as string),
    maxConnections: countValue('app-connections', values['app-connections'] as string),
    connectionRatePerPeer: countValue('app-connection-rate', values['app-connection-rate'] as string),
    connectionBurstPerPeer: countValue('app-connection-burst', values['app-connection-burst'] as string),
    subnegotiationTimeoutMs: durationMs('subnegotiation-timeout', values['subnegotiation-timeout'] as string),
    grpcPrefaceTimeoutMs: durationMs('grpc-preface-timeout', values['grpc-preface-timeout'] as string),
  };
}

export const AGENT_FLAGS: readonly FlagSpec[] = [
  { name: 'host-id', kind: 'string', required: true, help: 'this gateway host\'s id' },
  {
    name: 'control-plane',
    kind: 'addresses',
    default: '127.0.0.1:15010',
    help: 'control plane gRPC address, or its replicas\' separated by commas (a lost replica is left for the next)',
  },
  { name: 'listen', kind: 'address', default: '127.0.0.1:15020', help: 'socket-plane address' },
  { name: 'advertise', kind: 'address', help: 'socket-plane address announced to sidecars (default: the bound --listen)' },
  { name: 'watch', kind: 'list', help: '[kind:]glob of device paths to watch, e.g. /dev/ttyUSB* or hid:/dev/hidraw*; kinds serial, hid, gpio, sensor, lab, video, audio (repeatable)' },
  { name: 'simulate', kind: 'list', help: 'simulated device to serve: modem (repeatable)' },
  {
    name: 'capture-source',
    kind: 'string',
    default: 'device',
    help: 'cameras and microphones: device (V4L2/ALSA through ffmpeg) or lavfi (ffmpeg test sources, for machines without capture hardware)',
  },
  { name: 'admin', kind: 'address', default: '127.0.0.1:15002', help: 'admin HTTP address' },
  { name: 'sysfs-root', kind: 'string', default: '/sys', help: 'where the serial listing reads sysfs (a container that mounts the host\'s elsewhere)' },
  { name: 'dev-root', kind: 'string', default: '/dev', help: 'the directory the serial listing names its ports in (with --sysfs-root)' },
  { name: 'load-interval', kind: 'duration', default: '1s', help: 'how often binding and device rates are measured and reported to the control plane' },
  ...SOCKET_PLANE_LIMIT_FLAGS,
  ...TELEMETRY_FLAGS,
  ...LOG_FLAGS,
  CONFIG_FLAG,
  ...MEMBER_FLAGS,
];

export const SIDECAR_FLAGS: readonly FlagSpec[] = [
  { name: 'workload-id', kind: 'string', required: true, help: 'the workload this sidecar serves' },
  {
    name: 'control-plane',
    kind: 'addresses',
    default: '127.0.0.1:15010',
    help: 'control plane gRPC address, or its replicas\' separated by commas (a lost stream moves on to the next)',
  },
  { name: 'admin', kind: 'address', default: '127.0.0.1:15001', help: 'admin HTTP address' },
  {
    name: 'drain-timeout',
    kind: 'duration',
    default: '10s',
    help: 'on SIGTERM: stop accepting, let app connections finish for at most this long, then exit',
  },
  ...APP_LIMIT_FLAGS,
  ...TELEMETRY_FLAGS,
  ...LOG_FLAGS,
  CONFIG_FLAG,
  ...MEMBER_FLAGS,
];

function memberSecurity(values: Readonly<Record<string, string>>): MemberSecurityOptions {
  return {
    insecure: values.insecure === 'true',
    ...(values.token ? { token: values.token } : {}),
    ...(values['token-file'] ? { tokenFile: values['token-file'] } : {}),
    ...(values['identity-dir'] ? { identityDir: values['identity-dir'] } : {}),
  };
}

interface Closeable {
  close(): Promise<void>;
}

function noPositionals(command: string, positionals: readonly string[]): void {
  if (positionals.length > 0) throw new ValidationError('', `unexpected argument "${positionals[0]}" for "devicemesh ${command}"`);
}

/** Runs until SIGINT / SIGTERM, then shuts down cleanly. */
export function runUntilSignalled(running: Closeable): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void running
        .close()
        .then(stopProcessTelemetry)
        .finally(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export async function controlPlane(args: readonly string[]): Promise<void> {
  const { values, lists, positionals } = parseFlags('control-plane', args, CONTROL_PLANE_FLAGS);
  noPositionals('control-plane', positionals);
  const log = createLogger('control-plane', {}, openLogOutput(values['log-format'] as string));
  startTelemetry('devicemesh-control-plane', values);
  const insecure = values.insecure === 'true';
  if (insecure) warnInsecure('control-plane');
  if ((values['ca-cert'] === undefined) !== (values['ca-key'] === undefined)) throw new ValidationError('', 'give both --ca-cert and --ca-key, or neither');
  // Loaded here, not at the top: an agent or a sidecar need not load the control plane.
  const { startControlPlane } = await import('../../control-plane/main');
  const running = await startControlPlane({
    listen: values.listen as string,
    admin: values.admin as string,
    dataDir: values['data-dir'] as string,
    adaptIntervalMs: durationMs('adapt-interval', values['adapt-interval'] as string),
    ...webhookOptions(values),
    ...((lists['etcd-endpoints'] ?? []).length > 0 ? { etcd: { endpoints: lists['etcd-endpoints'] as string[], prefix: values['etcd-prefix'] as string } } : {}),
    insecure,
    trustDomain: values['trust-domain'] as string,
    certTtlMs: durationMs('cert-ttl', values['cert-ttl'] as string),
    san: lists.san ?? [],
    ...(values['ca-cert'] ? { externalCa: { certFile: values['ca-cert'], keyFile: values['ca-key'] as string } } : {}),
    ...(await kubernetesOptions(values)),
    log,
  });
  log.info(
    { grpc: running.grpcAddress, admin: running.adminAddress, caFile: running.security?.caFile, operatorTokenFile: running.security?.operatorTokenFile },
    'control plane ready',
  );
  await runUntilSignalled(running);
}

async function kubernetesOptions(values: Readonly<Record<string, string>>): Promise<Pick<ControlPlaneOptions, 'kubernetes'>> {
  if (values.kubernetes !== 'true') {
    for (const flag of ['kubeconfig', 'kubernetes-namespace', 'kubernetes-identity']) {
      if (values[flag] !== undefined) throw new ValidationError('', `flag --${flag} needs --kubernetes`);
    }
    return {};
  }
  const { loadKubeConfig, STATUS_WRITER_LEASE } = await import('../../control-plane/kubernetes/kube-config');
  return {
    kubernetes: {
      kubeConfig: loadKubeConfig(values.kubeconfig),
      lease: {
        namespace: values['kubernetes-namespace'] ?? process.env.POD_NAMESPACE ?? 'devicemesh-system',
        name: STATUS_WRITER_LEASE,
        identity: values['kubernetes-identity'] ?? process.env.POD_NAME ?? os.hostname(),
      },
    },
  };
}

function webhookOptions(values: Readonly<Record<string, string>>): Pick<ControlPlaneOptions, 'webhook'> {
  const listen = values['webhook-listen'];
  if (listen === undefined) return {};
  const certFile = values['webhook-cert'];
  const keyFile = values['webhook-key'];
  if (!certFile || !keyFile) throw new ValidationError('', 'flag --webhook-listen needs --webhook-cert and --webhook-key (the API server calls webhooks over TLS only)');
  return {
    webhook: {
      listen,
      cert: readPem('webhook-cert', certFile),
      key: readPem('webhook-key', keyFile),
      injection: {
        image: values['inject-image'] as string,
        controlPlane: values['inject-control-plane'] as string,
        caConfigMap: values['inject-ca-configmap'] as string,
      },
    },
  };
}

function readPem(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new ValidationError('', `flag --${flag}: cannot read ${file}: ${errorMessage(err)}`);
  }
}

export async function agent(args: readonly string[]): Promise<void> {
  const { values, lists, positionals } = parseFlags('agent', args, AGENT_FLAGS);
  noPositionals('agent', positionals);
  for (const s of lists.simulate ?? []) {
    if (s !== 'modem') throw new ValidationError('', `flag --simulate: "${s}" is not one of modem`);
  }
  const captureSource = values['capture-source'] as string;
  if (captureSource !== 'device' && captureSource !== 'lavfi') {
    throw new ValidationError('', `flag --capture-source: "${captureSource}" is not one of device, lavfi`);
  }
  const hostId = values['host-id'] as string;
  const log = createLogger('agent', { hostId }, openLogOutput(values['log-format'] as string));
  startTelemetry('devicemesh-agent', values);
  const { startAgent } = await import('../../agent/main');
  const running = await startAgent({
    hostId,
    controlPlane: values['control-plane'] as string,
    listen: values.listen as string,
    ...(values.advertise ? { advertise: values.advertise } : {}),
    watch: lists.watch ?? [],
    simulate: lists.simulate ?? [],
    captureSource,
    serialListingRoots: { sys: values['sysfs-root'] as string, dev: values['dev-root'] as string },
    admin: values.admin as string,
    loadIntervalMs: durationMs('load-interval', values['load-interval'] as string),
    socketPlaneLimits: socketPlaneLimits(values),
    security: memberSecurity(values),
    log,
  });
  log.info({ socketPlane: running.socketPlaneAddress, admin: running.adminAddress }, 'agent ready');
  await runUntilSignalled(running);
}

export async function sidecar(args: readonly string[]): Promise<void> {
  const { values, positionals } = parseFlags('sidecar', args, SIDECAR_FLAGS);
  noPositionals('sidecar', positionals);
  const workloadId = values['workload-id'] as string;
  const log = createLogger('sidecar', { workloadId }, openLogOutput(values['log-format'] as string));
  startTelemetry('devicemesh-sidecar', values);
  const { startSidecar } = await import('../../sidecar/main');
  const running = await startSidecar({
    workloadId,
    controlPlane: values['control-plane'] as string,
    admin: values.admin as string,
    drainTimeoutMs: durationMs('drain-timeout', values['drain-timeout'] as string),
    appLimits: appLimits(values),
    security: memberSecurity(values),
    log,
  });
  log.info({ admin: running.adminAddress }, 'sidecar ready');
  await runUntilSignalled(running);
}
