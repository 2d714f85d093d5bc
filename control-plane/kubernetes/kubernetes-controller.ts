import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { parseDocuments } from '../../src/documents/documents';
import { CUSTOM_RESOURCE_GROUP } from '../../src/documents/custom-resource';
import { DeviceMeshError, errorMessage, NotFoundError } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { Stats } from '../../src/telemetry/stats';
import { Backoff } from '../../src/util/backoff';
import { stableJson } from '../canonical';
import type { ControlPlaneState } from '../state';
import { BookmarkWatch } from './bookmark-watch';
import { LeaseElection } from './lease-election';
import { type ResourceStatus, resourceStatus } from './resource-status';

export const CUSTOM_RESOURCE_VERSION = 'v1';

/** The custom resources the controller reconciles, and the document kind each stands for. */
const KINDS = [
  { kind: 'Binding', plural: 'bindings', document: 'binding' },
  { kind: 'DevicePolicy', plural: 'devicepolicies', document: 'policy' },
] as const;
type Kind = (typeof KINDS)[number];

export interface KubernetesControllerOptions {
  kubeConfig: KubeConfig;
  state: ControlPlaneState;
  stats: Stats;
  log: Logger;
  /** The Lease that picks the one replica writing status and Events. */
  lease: { namespace: string; name: string; identity: string; durationMs?: number };
  /** Where Events about these cluster-scoped resources go (kubectl looks in `default`). */
  eventNamespace?: string;
}

/** A custom resource as the API server sends it. */
interface CustomResource extends KubernetesObject {
  spec?: unknown;
  status?: unknown;
}

/** What the controller holds about one resource. */
interface Tracked {
  kind: Kind;
  resource: CustomResource;
  /** The generation last applied (or refused); a status-only change keeps it. */
  applied: number | undefined;
  refusal: string | undefined;
  /** The status last written, so an unchanged one is not written again. */
  written: string | undefined;
  /** The generation whose refusal an Event was made for. */
  evented: number | undefined;
  /** Gone from Kubernetes: a retry of its change is dropped. */
  deleted: boolean;
}

/**
 * Reconciles Binding and DevicePolicy custom resources into the mesh: list + watch informers
 * (client-node's ListWatch: resourceVersion, bookmarks, a re-list after 410 Gone) feed one queue;
 * a new generation is applied through the same all-or-nothing path as `devicemesh apply`
 * (parseDocuments, then ControlPlaneState.apply), a deleted resource is deleted. Every replica
 * reconciles (its state is right whichever store it has); only the holder of the Lease writes
 * `.status` (phase, message, mapping id, observedGeneration) through the status subresource and
 * makes Events for refusals. Statuses follow the mesh: a device gone absent turns its bindings
 * PENDING without anyone touching the resource.
 */
export class KubernetesController {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly election: LeaseElection;
  private readonly tracked = new Map<string, Tracked>();
  private readonly informers: ListWatch<CustomResource>[] = [];
  private readonly restarts = new Set<NodeJS.Timeout>();
  private queue: Promise<void> = Promise.resolve();
  private readonly retries = new Backoff(250, 10_000);
  private sweepQueued = false;
  private closed = false;

  constructor(private readonly options: KubernetesControllerOptions) {
    this.custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.election = new LeaseElection({
      kubeConfig: options.kubeConfig,
      ...options.lease,
      log: options.log,
      onChange: (leader) => {
        options.stats.set('kubernetes_status_writer', leader ? 1 : 0);
        // A new writer writes what differs from what the resources carry.
        if (leader) this.sweep();
      },
    });
    options.stats.set('kubernetes_status_writer', 0);
    options.state.onCommit(() => this.sweep());
  }

  /** Starts the informers and the election; resolves once both kinds are listed. */
  async start(): Promise<void> {
    const listed: Promise<void>[] = [];
    for (const kind of KINDS) {
      const path = `/apis/${CUSTOM_RESOURCE_GROUP}/${CUSTOM_RESOURCE_VERSION}/${kind.plural}`;
      const list = async (): Promise<KubernetesListObject<CustomResource>> =>
        (await this.custom.listClusterCustomObject({ group: CUSTOM_RESOURCE_GROUP, version: CUSTOM_RESOURCE_VERSION, plural: kind.plural })) as KubernetesListObject<CustomResource>;
      const informer = new ListWatch<CustomResource>(path, new BookmarkWatch(this.options.kubeConfig), list, false);
      const backoff = new Backoff(250, 10_000);
      let starting = true;
      let firstError: unknown;
      informer.on('add', (r) => this.enqueue(() => this.changed(kind, r)));
      informer.on('update', (r) => this.enqueue(() => this.changed(kind, r)));
      informer.on('delete', (r) => this.enqueue(() => this.deleted(kind, r)));
      informer.on('connect', () => this.options.stats.add('kubernetes_watch_starts', 1, { kind: kind.kind }));
      // client-node's informer stops on an error other than 410 (a dropped connection, a refused
      // list): start it again, from the resourceVersion it has, after a backoff.
      informer.on('error', (err: unknown) => {
        if (this.closed) return;
        if (starting) {
          firstError ??= err;
          return;
        }
        const delay = backoff.next();
        this.options.stats.add('kubernetes_watch_errors', 1, { kind: kind.kind });
        this.options.log.warn({ kind: kind.kind, error: errorMessage(err), retryInMs: Math.round(delay) }, 'Kubernetes list/watch failed; retrying');
        const timer = setTimeout(() => {
          this.restarts.delete(timer);
          if (!this.closed) void informer.start();
        }, delay);
        this.restarts.add(timer);
      });
      informer.on('add', () => backoff.reset());
      this.informers.push(informer);
      // start() resolves once the list is in and the watch is open, or once either failed.
      listed.push(
        informer.start().then(() => {
          starting = false;
          if (firstError !== undefined) throw firstError;
        }),
      );
    }
    try {
      await Promise.all(listed);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.election.start();
    this.options.log.info({ kinds: KINDS.map((k) => k.kind), tracked: this.tracked.size }, 'watching Kubernetes custom resources');
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.restarts) clearTimeout(timer);
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.queue;
    await this.election.close();
  }

  /** One change at a time, in the order the watches delivered them. */
  private enqueue(work: () => Promise<void>): void {
    this.queue = this.queue.then(work).catch((err: unknown) => {
      this.options.log.error({ error: errorMessage(err) }, 'reconciling a Kubernetes resource failed');
    });
  }

  private async changed(kind: Kind, resource: CustomResource): Promise<void> {
    const name = resource.metadata?.name ?? '';
    const key = `${kind.plural}/${name}`;
    const generation = resource.metadata?.generation ?? 0;
    const t: Tracked = this.tracked.get(key) ?? { kind, resource, applied: undefined, refusal: undefined, written: undefined, evented: undefined, deleted: false };
    t.resource = resource;
    this.tracked.set(key, t);
    // What the resource carries now is what a writer compares with (another replica may have written it).
    t.written = resource.status === undefined ? undefined : stableJson(resource.status);
    if (t.applied === generation) {
      await this.writeStatus(t);
      return;
    }
    try {
      const request = parseDocuments(JSON.stringify({ ...resource, status: undefined }), `${kind.document}/${name}`);
      await this.options.state.apply(request);
      t.refusal = undefined;
      this.options.stats.add('kubernetes_reconciles', 1, { kind: kind.kind, result: 'applied' });
    } catch (err) {
      if (transient(err)) {
        this.retry(t, err);
        return;
      }
      t.refusal = errorMessage(err);
      this.options.stats.add('kubernetes_reconciles', 1, { kind: kind.kind, result: 'refused' });
      this.options.log.warn({ resource: key, generation, error: t.refusal }, 'Kubernetes resource refused');
    }
    t.applied = generation;
    this.retries.reset();
    await this.writeStatus(t);
  }

  /** The control plane could not take the change now (its store is away): the latest version of the resource is tried again. */
  private retry(t: Tracked, err: unknown): void {
    const delay = this.retries.next();
    const key = `${t.kind.plural}/${t.resource.metadata?.name ?? ''}`;
    this.options.stats.add('kubernetes_reconcile_retries', 1, { kind: t.kind.kind });
    this.options.log.warn({ resource: key, error: errorMessage(err), retryInMs: Math.round(delay) }, 'applying a Kubernetes resource failed; retrying');
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (!this.closed && !t.deleted) this.enqueue(() => this.changed(t.kind, t.resource));
    }, delay);
    this.restarts.add(timer);
  }

  private async deleted(kind: Kind, resource: CustomResource): Promise<void> {
    const name = resource.metadata?.name ?? '';
    const key = `${kind.plural}/${name}`;
    const t = this.tracked.get(key);
    if (t) t.deleted = true;
    this.tracked.delete(key);
    try {
      await this.options.state.delete(kind.document, name);
      this.options.stats.add('kubernetes_reconciles', 1, { kind: kind.kind, result: 'deleted' });
    } catch (err) {
      if (err instanceof NotFoundError) return;
      if (transient(err)) throw err;
      // A policy still referenced stays in the mesh: say so where kubectl shows it.
      this.options.log.warn({ resource: key, error: errorMessage(err) }, 'deleting a Kubernetes resource from the mesh was refused');
      await this.event(kind, resource, 'DeleteRefused', errorMessage(err));
    }
  }

  /** Writes every tracked resource's status that the last commit changed; once per turn of the event loop. */
  private sweep(): void {
    if (this.sweepQueued || this.closed) return;
    this.sweepQueued = true;
    setImmediate(() =>
      this.enqueue(async () => {
        this.sweepQueued = false;
        for (const t of this.tracked.values()) await this.writeStatus(t);
      }),
    );
  }

  private async writeStatus(t: Tracked): Promise<void> {
    if (!this.election.isLeader() || t.applied === undefined) return;
    const name = t.resource.metadata?.name ?? '';
    const status: ResourceStatus = resourceStatus({
      kind: t.kind.kind,
      name,
      generation: t.applied,
      refusal: t.refusal,
      bindings: this.options.state.bindingStatuses(),
      policies: this.options.state.policies(),
    });
    if (t.refusal !== undefined && t.evented !== t.applied) {
      t.evented = t.applied;
      await this.event(t.kind, t.resource, 'Refused', t.refusal);
    }
    const text = stableJson(status);
    if (text === t.written) return;
    try {
      await this.custom.patchClusterCustomObjectStatus(
        { group: CUSTOM_RESOURCE_GROUP, version: CUSTOM_RESOURCE_VERSION, plural: t.kind.plural, name, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      t.written = text;
      this.options.stats.add('kubernetes_status_writes', 1, { kind: t.kind.kind });
    } catch (err) {
      // Deleted meanwhile: its delete event follows.
      if (err instanceof ApiException && err.code === 404) return;
      this.options.stats.add('kubernetes_status_write_errors', 1, { kind: t.kind.kind });
      this.options.log.warn({ resource: `${t.kind.plural}/${name}`, error: errorMessage(err) }, 'writing a Kubernetes status failed; the next change writes it again');
    }
  }

  private async event(kind: Kind, resource: CustomResource, reason: string, message: string): Promise<void> {
    if (!this.election.isLeader()) return;
    const name = resource.metadata?.name ?? '';
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace: this.options.eventNamespace ?? 'default',
        body: {
          metadata: { generateName: `${name}.` },
          involvedObject: {
            apiVersion: `${CUSTOM_RESOURCE_GROUP}/${CUSTOM_RESOURCE_VERSION}`,
            kind: kind.kind,
            name,
            ...(resource.metadata?.uid ? { uid: resource.metadata.uid } : {}),
            ...(resource.metadata?.resourceVersion ? { resourceVersion: resource.metadata.resourceVersion } : {}),
          },
          reason,
          message,
          type: 'Warning',
          source: { component: 'devicemesh-control-plane' },
          reportingComponent: 'devicemesh.io/control-plane',
          reportingInstance: this.options.lease.identity,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.options.stats.add('kubernetes_events', 1, { kind: kind.kind, reason });
    } catch (err) {
      this.options.stats.add('kubernetes_event_errors', 1, { kind: kind.kind });
      this.options.log.warn({ resource: `${kind.plural}/${name}`, reason, error: errorMessage(err) }, 'could not record a Kubernetes Event');
    }
  }
}

/** A failure of the control plane itself (its store away), not a verdict on the resource. */
function transient(err: unknown): boolean {
  return !(err instanceof DeviceMeshError) || err.code === 'UNAVAILABLE' || err.code === 'INTERNAL';
}
