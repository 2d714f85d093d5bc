import { performance } from 'node:perf_hooks';
import type { Histogram, Stats } from '../src/telemetry/stats';
import type { AdsProtocol } from '../src/xds/protocols';
import type { ChangeReason } from './snapshot-cache';

/** Why a discovery response was sent: a committed change, or a stream asking for its state. */
export type PushTrigger = ChangeReason | 'connect' | 'subscribe';

const HELP: Readonly<Record<string, string>> = {
  xds_pushes: 'Discovery responses sent, by type URL and protocol',
  xds_push_triggers: 'Discovery responses sent, by what caused them (a response that carries several changes counts under each)',
  xds_acks: 'Discovery responses acknowledged, by type URL and protocol',
  xds_nacks: 'Discovery responses rejected, by node',
  proxy_acks: 'Discovery responses acknowledged, by node',
  xds_queue_seconds: 'From a committed change to the start of the push that carries it to a proxy',
  xds_push_latency_seconds: 'From a committed change to the response that carries it written to the proxy’s stream',
  xds_convergence_seconds: 'From a committed change to the proxy’s ACK of the response that carries it',
};

/**
 * The discovery metrics Istio operators watch (pilot_xds_pushes, pilot_push_triggers,
 * pilot_proxy_queue_time, pilot_proxy_convergence_time), on the control plane's /stats.
 * Times start at the commit of the oldest change a response carries; a response that only
 * answers a new subscription carries no change and is counted but not timed.
 */
export class AdsMetrics {
  private readonly queue: Histogram;
  private readonly latency: Histogram;
  private readonly convergence: Histogram;

  constructor(private readonly stats: Stats) {
    for (const [name, help] of Object.entries(HELP)) stats.describe(name, help);
    this.queue = stats.histogram('xds_queue_seconds');
    this.latency = stats.histogram('xds_push_latency_seconds');
    this.convergence = stats.histogram('xds_convergence_seconds');
  }

  pushStarted(typeUrl: string, protocol: AdsProtocol, triggers: Iterable<PushTrigger>, changedAt: number | undefined): void {
    this.stats.add('xds_pushes', 1, { type: typeUrl, protocol });
    for (const reason of triggers) this.stats.add('xds_push_triggers', 1, { reason });
    if (changedAt !== undefined) this.queue.observe(secondsSince(changedAt));
  }

  pushWritten(changedAt: number | undefined): void {
    if (changedAt !== undefined) this.latency.observe(secondsSince(changedAt));
  }

  acked(typeUrl: string, protocol: AdsProtocol, changedAt: number | undefined, nodeId: string): void {
    this.stats.add('xds_acks', 1, { type: typeUrl, protocol });
    this.stats.add('proxy_acks', 1, { node: nodeId });
    if (changedAt !== undefined) this.convergence.observe(secondsSince(changedAt));
  }

  nacked(nodeId: string): void {
    this.stats.add('xds_nacks', 1, { node: nodeId });
  }

  connectedProxies(count: number): void {
    this.stats.set('connected_proxies', count);
  }
}

function secondsSince(at: number): number {
  return Math.max(0, performance.now() - at) / 1000;
}
