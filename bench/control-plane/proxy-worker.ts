/**
 * A forked child that plays many proxies: one real AdsClient (own gRPC connection, own discovery
 * stream) per proxy, so the parent that measures is not the process loaded with the streams.
 * Each sidecar records when its client reports a version applied — the moment it ACKs.
 */
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../src/errors';
import { createLogger } from '../../src/log';
import { AdsClient } from '../../src/xds/ads-client';
import type { AdsProtocol } from '../../src/xds/protocols';
import { MAPPING_TYPE_URL } from '../../src/xds/type-urls';
import {
  type Expectation,
  type MappingContent,
  matches,
  monotonicMs,
  type ParentMessage,
  type ProxySpec,
  type WorkerMessage,
} from './messages';

interface Applied extends MappingContent {
  t: number;
}

interface Proxy {
  spec: ProxySpec;
  client: AdsClient;
  /** What the handler was last given; the `applied` event that follows is for it. */
  pending: MappingContent | undefined;
  /** Recent applications, newest last: an await may arrive after the ACK it waits for. */
  history: Applied[];
  ready: boolean;
}

interface Waiter {
  requestId: number;
  since: number;
  expect: Expectation;
  times: Map<string, number>;
  remaining: Set<string>;
  timer: NodeJS.Timeout;
}

const HISTORY = 16;
const log = createLogger('bench-proxy');
const proxies = new Map<string, Proxy>();
const waiters = new Set<Waiter>();
let lastStreamError = '';

function send(message: WorkerMessage): void {
  process.send?.(message);
}

/**
 * Insecure credentials equal only to themselves: grpc-js would otherwise put every client of
 * this process on one shared HTTP/2 connection, whereas real proxies each have their own.
 */
function ownConnection(): grpc.ChannelCredentials {
  const credentials = Object.create(grpc.credentials.createInsecure()) as grpc.ChannelCredentials;
  credentials._equals = (other: grpc.ChannelCredentials): boolean => other === credentials;
  return credentials;
}

/** The sidecar's mapping, as the benchmark shaped it (one per sidecar); undefined if absent. */
function contentOf(resources: unknown[]): MappingContent | undefined {
  const m = resources[0] as { serial?: { baudRate?: unknown } | null; policy?: { bytesPerSecond?: unknown } | null } | undefined;
  if (typeof m?.serial?.baudRate !== 'number' || typeof m.policy?.bytesPerSecond !== 'string') return undefined;
  return { baudRate: m.serial.baudRate, bytesPerSecond: m.policy.bytesPerSecond };
}

function startProxy(address: string, protocol: AdsProtocol, spec: ProxySpec): Proxy {
  const client = new AdsClient({
    address,
    identity: spec,
    log,
    credentials: ownConnection(),
    protocol,
    handlers: {
      [MAPPING_TYPE_URL]: (resources: unknown[]): void => {
        proxy.pending = contentOf(resources);
      },
    },
  });
  const proxy: Proxy = { spec, client, pending: undefined, history: [], ready: false };
  proxy.client.on('applied', () => onApplied(proxy));
  proxy.client.on('disconnected', (reason: string) => (lastStreamError = `${spec.kind} ${spec.id}: ${reason}`));
  proxy.client.on('rejected', (_typeUrl: string, _version: string, message: string) => (lastStreamError = `${spec.id} NACKed: ${message}`));
  proxy.client.start();
  return proxy;
}

function onApplied(proxy: Proxy): void {
  const t = monotonicMs();
  // An agent is ready once connected; a sidecar once it holds its mapping.
  if (proxy.spec.kind === 'agent' || proxy.pending) proxy.ready = true;
  if (proxy.spec.kind !== 'sidecar' || !proxy.pending) return;
  const applied = { t, ...proxy.pending };
  proxy.history.push(applied);
  if (proxy.history.length > HISTORY) proxy.history.shift();
  for (const w of waiters) {
    if (w.remaining.has(proxy.spec.id) && applied.t >= w.since && matches(applied, w.expect)) settle(w, proxy.spec.id, applied.t);
  }
}

function settle(w: Waiter, id: string, t: number): void {
  w.remaining.delete(id);
  w.times.set(id, t);
  if (w.remaining.size > 0) return;
  clearTimeout(w.timer);
  waiters.delete(w);
  send({ type: 'awaited', requestId: w.requestId, times: [...w.times.values()] });
}

function awaitChange(msg: Extract<ParentMessage, { type: 'await' }>): void {
  const ids = msg.workloads === 'all' ? [...proxies.values()].filter((p) => p.spec.kind === 'sidecar').map((p) => p.spec.id) : msg.workloads;
  const w: Waiter = {
    requestId: msg.requestId,
    since: msg.since,
    expect: msg.expect,
    times: new Map(),
    remaining: new Set(ids),
    timer: setTimeout(() => {
      waiters.delete(w);
      const missing = [...w.remaining];
      send({
        type: 'await-failed',
        requestId: w.requestId,
        message: `${missing.length} of ${ids.length} sidecars (e.g. ${missing[0]}) did not apply the change within ${msg.timeoutMs} ms${lastStreamError ? `; last stream event: ${lastStreamError}` : ''}`,
      });
    }, msg.timeoutMs),
  };
  waiters.add(w);
  for (const id of ids) {
    const proxy = proxies.get(id);
    if (!proxy) {
      clearTimeout(w.timer);
      waiters.delete(w);
      send({ type: 'await-failed', requestId: w.requestId, message: `no sidecar ${id} in this worker` });
      return;
    }
    const hit = proxy.history.find((a) => a.t >= w.since && matches(a, w.expect));
    if (hit) settle(w, id, hit.t);
  }
}

function start(msg: Extract<ParentMessage, { type: 'start' }>): void {
  const started = monotonicMs();
  for (const spec of msg.proxies) proxies.set(spec.id, startProxy(msg.address, msg.protocol, spec));
  const deadline = Date.now() + msg.timeoutMs;
  const poll = setInterval(() => {
    const notReady = [...proxies.values()].filter((p) => !p.ready);
    if (notReady.length === 0) {
      clearInterval(poll);
      send({ type: 'ready', connectMs: monotonicMs() - started, protocols: [...new Set([...proxies.values()].map((p) => p.client.protocolInUse()))] });
    } else if (Date.now() > deadline) {
      clearInterval(poll);
      send({
        type: 'failed',
        message: `${notReady.length} of ${proxies.size} proxies not configured after ${msg.timeoutMs} ms${lastStreamError ? `; last stream event: ${lastStreamError}` : ''}`,
      });
    }
  }, 20);
}

function stop(): never {
  for (const p of proxies.values()) p.client.stop();
  process.exit(0);
}

process.on('message', (msg: ParentMessage) => {
  try {
    if (msg.type === 'start') start(msg);
    else if (msg.type === 'await') awaitChange(msg);
    else stop();
  } catch (err) {
    send({ type: 'failed', message: errorMessage(err) });
  }
});
// The parent is gone (crashed or killed): nobody is measuring any more.
process.on('disconnect', stop);
