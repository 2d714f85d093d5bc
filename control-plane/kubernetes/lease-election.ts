import { ApiException, CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { errorMessage } from '../../src/errors';
import type { Logger } from '../../src/log';

export interface LeaseElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  /** This replica's name in the lease (its pod name). */
  identity: string;
  /** How long a lease not renewed stays its holder's (default 15 s); renewed every third of it. */
  durationMs?: number;
  log: Logger;
  /** Told each time this replica becomes or stops being the holder. */
  onChange(leader: boolean): void;
}

/**
 * One holder among the control plane's replicas, through a coordination.k8s.io/v1 Lease, the way
 * client-go's leader election does it: create the lease if there is none, renew it while held,
 * take it over once it has not changed for a whole lease duration (measured on this replica's
 * clock, so clock skew between replicas does not matter). Every write carries the lease's
 * resourceVersion, so of two replicas racing for it the API server lets exactly one win (the other
 * gets 409 Conflict). A holder that cannot renew for a lease duration stops counting itself the
 * holder. On close a held lease is released, so another replica takes over at once.
 */
export class LeaseElection {
  private readonly api: CoordinationV1Api;
  private readonly durationMs: number;
  private leader = false;
  private lastRenewed = 0;
  /** The lease as last read, and when (this clock) its holder or renew time last changed. */
  private observed: { key: string; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaseElectionOptions) {
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.durationMs = options.durationMs ?? 15_000;
  }

  isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    this.tick();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
    if (this.leader) await this.release();
    this.setLeader(false);
  }

  private tick(): void {
    if (this.closed) return;
    this.running = this.attempt().finally(() => {
      if (!this.closed) this.timer = setTimeout(() => this.tick(), this.durationMs / 3);
    });
  }

  private async attempt(): Promise<void> {
    const { namespace, name, identity, log } = this.options;
    try {
      const lease = await this.read();
      const now = Date.now();
      if (!lease) {
        await this.api.createNamespacedLease({ namespace, body: this.record(undefined, now) });
        this.renewed(now, 'acquired (created)');
        return;
      }
      const spec = lease.spec ?? {};
      const key = `${spec.holderIdentity ?? ''}|${String(spec.renewTime ?? '')}|${lease.metadata?.resourceVersion ?? ''}`;
      if (this.observed?.key !== key) this.observed = { key, at: now };
      const mine = spec.holderIdentity === identity;
      const expired = !spec.holderIdentity || now - this.observed.at > (spec.leaseDurationSeconds ?? this.durationMs / 1000) * 1000;
      if (!mine && !expired) {
        this.setLeader(false);
        return;
      }
      await this.api.replaceNamespacedLease({ namespace, name, body: this.record(lease, now) });
      this.renewed(now, mine ? 'renewed' : `taken over from ${spec.holderIdentity || 'nobody'}`);
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) {
        // Another replica wrote the lease first: it holds it.
        this.setLeader(false);
        return;
      }
      log.warn({ lease: `${namespace}/${name}`, error: errorMessage(err) }, 'could not read or renew the status-writer lease');
      if (this.leader && Date.now() - this.lastRenewed > this.durationMs) this.setLeader(false);
    }
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease({ namespace: this.options.namespace, name: this.options.name });
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
  }

  /** The lease held by this replica from `now`, written over `previous` (its resourceVersion guards the write). */
  private record(previous: V1Lease | undefined, now: number): V1Lease {
    const spec = previous?.spec ?? {};
    const mine = spec.holderIdentity === this.options.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.options.name, namespace: this.options.namespace, ...(previous?.metadata?.resourceVersion ? { resourceVersion: previous.metadata.resourceVersion } : {}) },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.ceil(this.durationMs / 1000),
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : new Date(now),
        renewTime: new Date(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (previous && !mine ? 1 : 0),
      },
    };
  }

  private renewed(now: number, how: string): void {
    this.lastRenewed = now;
    if (!this.leader) this.options.log.info({ lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity, how }, 'this replica writes Kubernetes status');
    this.setLeader(true);
  }

  private async release(): Promise<void> {
    const { namespace, name } = this.options;
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.options.identity) return;
      await this.api.replaceNamespacedLease({
        namespace,
        name,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new Date() } },
      });
    } catch (err) {
      this.options.log.warn({ lease: `${namespace}/${name}`, error: errorMessage(err) }, 'could not release the status-writer lease; it expires on its own');
    }
  }

  private setLeader(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    if (!leader) this.options.log.info({ lease: `${this.options.namespace}/${this.options.name}` }, 'this replica no longer writes Kubernetes status');
    this.options.onChange(leader);
  }
}
