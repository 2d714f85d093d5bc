import { errorMessage, NotFoundError } from '../src/errors';
import type { Logger } from '../src/log';
import type { Counter } from '../src/telemetry/stats';
import type { AdaptiveLimit, Binding, BindingStatus, EndpointEvent, Host, Mapping, PhysicalEndpoint, Policy, Timestamp } from '../src/proto/types';
import { canonicalBinding, canonicalPolicy, compareStrings, sameContent, timestampOf } from './canonical';
import { checkApply, checkPolicyDelete } from './conflicts';
import { GroupCommit, type Outcome } from './group-commit';
import { generateFrom, type GeneratedMappings } from './mapping-generator';
import { OverlayMap, overlayDelta } from './overlay-map';
import { Register } from './register';
import { checkApplyRequest, checkDeleteRequest, checkEndpointReport, checkHostReport } from './request-checks';
import { diffMappings, type StateDelta } from './state-delta';
import { type StateBackend, StaleStateError } from './state-backend';
import { applyDelta, diffStates } from './state-delta';
import type { StoredState, WriteReport } from './state-store';

export interface ApplyResult {
  /** One line per document, e.g. "binding/app1-modem created". */
  results: string[];
  version: string;
}

/**
 * What a committed batch changed; `restart` is the commit of a control plane loading its state,
 * `bandwidth` the bandwidth controller's new adaptive limits.
 */
export type ChangeKind = 'binding' | 'policy' | 'endpoint' | 'host' | 'restart' | 'bandwidth';

export type CommitListener = (mappings: readonly Mapping[], version: string, kinds: ReadonlySet<ChangeKind>) => void;
export type EndpointListener = (event: EndpointEvent) => void;

export interface StateOptions {
  clock?: () => Date;
  /** Counts durable writes. */
  writes?: Counter;
}

/** The committed state, or a batch's draft over it (its maps and register are overlays on the committed ones). */
interface MeshData {
  version: number;
  bindings: OverlayMap<string, Binding>;
  policies: OverlayMap<string, Policy>;
  register: Register;
  generated: GeneratedMappings;
  /** A batch's new adaptive limits by mapping id, for its generation; empty in the committed state. */
  adaptive: Map<string, AdaptiveLimit>;
}

interface Change<T> {
  value: T;
  /** What the request changed; empty when it turned out to change nothing: no new version, no write. */
  changed: readonly ChangeKind[];
}

/** One mutation as the group commit runs it: changes the draft (or throws), says what it changed. */
type Job = (draft: MeshData, now: Timestamp) => readonly ChangeKind[];

/**
 * The control plane's state and the one way to change it. Mutations are group-committed: those
 * that arrive while a write is in flight are run together, in order, each on its own copy of
 * the draft (a refused one leaves no trace); then the batch bumps the version once, regenerates
 * the mappings, is persisted by one write, and only then is swapped in and told to the
 * listeners. A caller is answered once the write holding its change is durable; a failed write
 * fails the whole batch and leaves everything as it was.
 */
export class ControlPlaneState {
  private readonly commits = new GroupCommit<Job, string>((jobs) => this.commitBatch(jobs));
  private readonly commitListeners: CommitListener[] = [];
  private readonly endpointListeners = new Set<EndpointListener>();
  /** Commits and other replicas' changes take turns on `data`. */
  private turn: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: StateBackend,
    private readonly log: Logger,
    private readonly clock: () => Date,
    private readonly writes: Counter | undefined,
    private data: MeshData,
  ) {}

  /**
   * Loads the state and records the restart as a new version. On a store shared by replicas it
   * then follows the others' commits, applying each as if it were its own.
   */
  static async open(store: StateBackend, log: Logger, options: StateOptions = {}): Promise<ControlPlaneState> {
    const { state: stored, replayed, tornBytes } = await store.load();
    if (tornBytes > 0) log.warn({ store: store.description, bytes: tornBytes }, 'discarded the torn last record of the state log (a crash interrupted its write)');
    const state = new ControlPlaneState(store, log, options.clock ?? ((): Date => new Date()), options.writes, meshDataOf(stored));
    if (store.follow) {
      await store.follow(
        (delta) => void state.inTurn(() => state.applyExternal(delta)).catch((err: unknown) => state.followFailed(err)),
        (err) => state.followFailed(err),
      );
    }
    // No version handed out before the restart may be handed out again for different content
    // (and from a data directory, endpoints are unknown and hosts disconnected now): this is a
    // change like any other.
    await state.mutate(() => ({ value: undefined, changed: ['restart'] }));
    log.info({ version: state.version(), store: store.description, bindings: stored.bindings.length, replayed }, 'state loaded');
    return state;
  }

  version(): string {
    return String(this.data.version);
  }

  endpoints(hostId?: string): PhysicalEndpoint[] {
    return this.data.register.endpoints(hostId);
  }

  endpointCount(): number {
    return this.data.register.endpointCount();
  }

  endpoint(id: string): PhysicalEndpoint {
    const e = this.data.register.endpoint(id);
    if (!e) throw new NotFoundError(`endpoint ${id} is not in the register`);
    return e;
  }

  hosts(hostId?: string): Host[] {
    return this.data.register.hosts().filter((h) => !hostId || h.id === hostId);
  }

  bindingStatuses(): BindingStatus[] {
    return this.data.generated.statuses;
  }

  policies(): Policy[] {
    return [...this.data.policies.values()].sort((a, b) => compareStrings(a.name, b.name));
  }

  mappings(filter: { workloadId?: string; hostId?: string } = {}): Mapping[] {
    return this.data.generated.mappings.filter(
      (m) => (!filter.workloadId || m.workloadId === filter.workloadId) && (!filter.hostId || m.hostId === filter.hostId),
    );
  }

  /** Called after every committed change with the new mapping table. */
  onCommit(listener: CommitListener): void {
    this.commitListeners.push(listener);
  }

  /** Endpoint changes as they are committed; returns the unsubscribe function. */
  watchEndpoints(listener: EndpointListener): () => void {
    this.endpointListeners.add(listener);
    return () => this.endpointListeners.delete(listener);
  }

  /** Resolves once every mutation queued so far has finished. */
  async idle(): Promise<void> {
    await this.commits.idle();
  }

  async apply(documents: { bindings: readonly Binding[]; policies: readonly Policy[] }): Promise<ApplyResult> {
    checkApplyRequest(documents);
    const bindings = documents.bindings.map(canonicalBinding);
    const policies = documents.policies.map(canonicalPolicy);
    const { value, version } = await this.mutate((draft) => {
      const { register } = draft;
      checkApply({ bindings: [...draft.bindings.values()], policies: [...draft.policies.values()] }, (selector) => register.select(selector), {
        bindings,
        policies,
      });
      const results: string[] = [];
      const changed = new Set<ChangeKind>();
      const put = <T extends { name: string }>(kind: 'binding' | 'policy', map: OverlayMap<string, T>, doc: T): void => {
        const old = map.get(doc.name);
        const outcome = !old ? 'created' : sameContent(old, doc) ? 'unchanged' : 'configured';
        if (outcome !== 'unchanged') {
          map.set(doc.name, doc);
          changed.add(kind);
        }
        results.push(`${kind}/${doc.name} ${outcome}`);
      };
      for (const p of policies) put('policy', draft.policies, p);
      for (const b of bindings) put('binding', draft.bindings, b);
      return { value: results, changed: [...changed] };
    });
    for (const line of value) this.log.info({ version, result: line }, 'document applied');
    return { results: value, version };
  }

  /** Deletes a binding (its mapping is withdrawn) or an unused policy; returns the new version. */
  async delete(kind: string, name: string): Promise<string> {
    checkDeleteRequest(kind, name);
    const { version } = await this.mutate((draft) => {
      const map: OverlayMap<string, unknown> = kind === 'binding' ? draft.bindings : draft.policies;
      if (!map.has(name)) throw new NotFoundError(`${kind}/${name} does not exist`);
      if (kind === 'policy') checkPolicyDelete(name, [...draft.bindings.values()]);
      map.delete(name);
      return { value: undefined, changed: [kind === 'binding' ? 'binding' : 'policy'] };
    });
    this.log.info({ version, document: `${kind}/${name}` }, 'document deleted');
    return version;
  }

  async registerEndpoint(reported: PhysicalEndpoint): Promise<PhysicalEndpoint> {
    checkEndpointReport(reported);
    const { value, version } = await this.mutate((draft, now) => ({ value: draft.register.reportEndpoint(reported, now), changed: ['endpoint'] }));
    this.log.info({ version, endpoint: value.id, path: value.path, kind: value.kind }, 'endpoint registered');
    return value;
  }

  /** An agent's whole inventory (see Register.reportHost); the version moves only if something changed. */
  async reportHost(hostId: string, endpoints: PhysicalEndpoint[]): Promise<{ version: string; registered: number; markedAbsent: number }> {
    checkHostReport(hostId, endpoints);
    const { value, version } = await this.mutate((draft, now) => {
      const outcome = draft.register.reportHost(hostId, endpoints, now);
      return { value: outcome, changed: outcome.registered + outcome.markedAbsent > 0 ? ['endpoint'] : [] };
    });
    if (value.registered + value.markedAbsent > 0) this.log.info({ version, host: hostId, ...value }, 'host reported its devices');
    return { version, ...value };
  }

  async deregisterEndpoint(id: string, markAbsent: boolean): Promise<void> {
    const { version } = await this.mutate((draft, now) => {
      const found = markAbsent ? draft.register.markAbsent(id, now) !== undefined : draft.register.removeEndpoint(id);
      if (!found) throw new NotFoundError(`endpoint ${id} is not in the register`);
      return { value: undefined, changed: ['endpoint'] };
    });
    this.log.info({ version, endpoint: id, markAbsent }, markAbsent ? 'endpoint absent' : 'endpoint removed');
  }

  /**
   * The bandwidth controller's new limits: each goes into its mapping, which gets a new version
   * and is pushed. Limits for mappings withdrawn since are dropped. Returns the version and the
   * ids of the mappings whose limit was set.
   */
  async setAdaptiveLimits(limits: ReadonlyMap<string, AdaptiveLimit>): Promise<{ version: string; applied: string[] }> {
    const { value, version } = await this.mutate((draft) => {
      // Checked before anything is written: this job is never refused halfway.
      const known = new Set(draft.generated.mappings.map((m) => m.id));
      const applied = [...limits.keys()].filter((id) => known.has(id));
      for (const id of applied) draft.adaptive.set(id, limits.get(id) as AdaptiveLimit);
      return { value: applied, changed: applied.length > 0 ? ['bandwidth'] : [] };
    });
    return { version, applied: value };
  }

  /** Resolves with when the connection was recorded: its disconnection names it. */
  async hostConnected(id: string, socketPlaneAddress: string): Promise<Timestamp> {
    const { value } = await this.mutate((draft, now) => ({ value: draft.register.hostConnected(id, socketPlaneAddress, now), changed: ['host'] }));
    return value.lastSeen as Timestamp;
  }

  /** The host's address is withdrawn, unless another connection (`connectedAt` names this one) was recorded since. */
  async hostDisconnected(id: string, connectedAt?: Timestamp): Promise<void> {
    await this.mutate((draft, now) => ({ value: undefined, changed: draft.register.hostDisconnected(id, now, connectedAt) ? ['host'] : [] }));
  }

  private async mutate<T>(change: (draft: MeshData, now: Timestamp) => Change<T>): Promise<{ value: T; version: string }> {
    // Assigned by the job, which has run by the time submit resolves.
    let value!: T;
    const version = await this.commits.submit((draft, now) => {
      const outcome = change(draft, now);
      value = outcome.value;
      return outcome.changed;
    });
    return { value, version };
  }

  private commitBatch(jobs: readonly Job[]): Promise<Outcome<string>[]> {
    return this.inTurn(async () => {
      // Another replica may take the version first: catch up with it and run the jobs again.
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.commitOnce(jobs);
        } catch (error) {
          if (!(error instanceof StaleStateError)) throw error;
          if (attempt >= MAX_COMMIT_ATTEMPTS) return jobs.map(() => ({ ok: false, error }));
          await this.catchUp();
        }
      }
    });
  }

  private async commitOnce(jobs: readonly Job[]): Promise<Outcome<string>[]> {
    const before = this.data;
    const now = timestampOf(this.clock());
    const draft = derive(before);
    const kinds = new Set<ChangeKind>();
    // Each job runs on the draft as the jobs before it left it; a refused one is rolled back.
    const refusals = jobs.map((job): { error: unknown } | undefined => {
      const mark = markOf(draft);
      try {
        for (const kind of job(draft, now)) kinds.add(kind);
      } catch (error) {
        mark();
        return { error };
      }
      return undefined;
    });
    const answer = (success: Outcome<string>): Outcome<string>[] => refusals.map((r) => (r ? { ok: false, error: r.error } : success));
    if (kinds.size === 0) return answer({ ok: true, value: String(before.version) });

    draft.version += 1;
    const { register } = draft;
    draft.generated = generateFrom({
      bindings: draft.bindings.values(),
      policies: draft.policies,
      select: (selector) => register.select(selector),
      byDeviceId: (id) => register.byDeviceId(id),
      host: (id) => register.host(id),
      version: String(draft.version),
      previous: before.generated,
      adaptive: draft.adaptive,
    });
    let report: WriteReport;
    try {
      report = await this.store.save({ delta: deltaOf(before, draft), full: () => toStored(draft) });
    } catch (error) {
      if (error instanceof StaleStateError) throw error;
      return answer({ ok: false, error });
    }
    // Read from the committed maps before the draft is folded into them.
    const events = endpointEvents(draft.register);
    fold(draft);
    this.data = draft;
    this.writes?.add(1);
    this.logWrite(report, jobs.length);
    this.publish(events, kinds);
    return answer({ ok: true, value: String(draft.version) });
  }

  /** Runs `fn` once everything before it on `data` is done. */
  private inTurn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** Another replica's commit: the next version is applied; a gap means reading what was missed. */
  private async applyExternal(delta: StateDelta): Promise<void> {
    if (delta.version <= this.data.version) return;
    if (delta.version === this.data.version + 1) this.adopt(applyDelta(toStored(this.data), delta), [delta]);
    else await this.catchUp();
  }

  private async catchUp(): Promise<void> {
    if (!this.store.catchUp) return;
    const missed = await this.store.catchUp(this.data.version);
    const current = toStored(this.data);
    if ('state' in missed) {
      this.adopt(missed.state, [diffStates(current, missed.state)]);
      return;
    }
    let state = current;
    for (const delta of missed.deltas) state = applyDelta(state, delta);
    if (state.version > current.version) this.adopt(state, missed.deltas);
  }

  /** Takes a state another replica committed as the current one, and tells the listeners what changed. */
  private adopt(stored: StoredState, deltas: readonly StateDelta[]): void {
    const before = this.data.register;
    const data = meshDataOf(stored);
    const { register } = data;
    // The statuses are not stored: generated here from the same inputs, the mappings are as stored.
    const regenerated = generateFrom({
      bindings: data.bindings.values(),
      policies: data.policies,
      select: (selector) => register.select(selector),
      byDeviceId: (id) => register.byDeviceId(id),
      host: (id) => register.host(id),
      version: String(stored.version),
      previous: { mappings: stored.mappings },
    });
    data.generated = { mappings: stored.mappings, statuses: regenerated.statuses, derived: new Map() };
    const kinds = new Set<ChangeKind>();
    const events: EndpointEvent[] = [];
    for (const d of deltas) {
      const touched = (list: { put: unknown[]; remove: string[] }): boolean => list.put.length + list.remove.length > 0;
      if (touched(d.bindings)) kinds.add('binding');
      if (touched(d.policies)) kinds.add('policy');
      if (touched(d.endpoints)) kinds.add('endpoint');
      if (touched(d.hosts)) kinds.add('host');
      for (const endpoint of d.endpoints.put) events.push({ type: 'TYPE_UPSERTED', endpoint });
      for (const id of d.endpoints.remove) {
        const endpoint = before.endpoint(id);
        if (endpoint) events.push({ type: 'TYPE_REMOVED', endpoint });
      }
    }
    // Only the mappings moved (the bandwidth controller), or nothing but the version (a restart).
    if (kinds.size === 0) kinds.add(deltas.some((d) => d.mappings.put.length + d.mappings.remove.length > 0) ? 'bandwidth' : 'restart');
    this.data = data;
    this.log.debug({ version: stored.version, kinds: [...kinds] }, 'applied another replica\'s commit');
    this.publish(events, kinds);
  }

  private followFailed(err: unknown): void {
    this.log.error({ error: errorMessage(err), store: this.store.description }, 'cannot follow the other replicas\' commits; catching up at the next write');
  }

  private logWrite(report: WriteReport, jobs: number): void {
    const { logBytes, snapshotBytes, compactionError } = report;
    this.log.debug({ version: this.data.version, jobs, logBytes, snapshotBytes }, 'state written');
    if (compactionError) {
      this.log.warn({ error: compactionError }, 'cannot fold the state log into a snapshot; the log keeps growing until a later attempt succeeds');
    }
  }

  private publish(events: readonly EndpointEvent[], kinds: ReadonlySet<ChangeKind>): void {
    // A listener's failure is its own: the change is committed and the others must hear of it.
    const notify = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        this.log.error({ error: errorMessage(err) }, 'state listener failed');
      }
    };
    const { mappings } = this.data.generated;
    const version = String(this.data.version);
    for (const event of events) for (const l of [...this.endpointListeners]) notify(() => l(event));
    for (const l of this.commitListeners) notify(() => l(mappings, version, kinds));
  }
}

/** Another replica's newer version may arrive between reading and writing: each try catches up first. */
const MAX_COMMIT_ATTEMPTS = 20;

/** The in-memory form of a stored state; its generated statuses come with the next generation. */
function meshDataOf(stored: StoredState): MeshData {
  return {
    version: stored.version,
    bindings: new OverlayMap(new Map(stored.bindings.map((b) => [b.name, b]))),
    policies: new OverlayMap(new Map(stored.policies.map((p) => [p.name, p]))),
    register: new Register(stored.endpoints, stored.hosts),
    generated: { mappings: stored.mappings, statuses: [], derived: new Map() },
    adaptive: new Map(),
  };
}

/** A batch's draft: overlays on the committed state, which stays as readers see it until the draft is folded. */
function derive(data: MeshData): MeshData {
  return { ...data, bindings: data.bindings.derive(), policies: data.policies.derive(), register: data.register.derive(), adaptive: new Map() };
}

/** Marks the draft's journals; calling the result undoes everything written since. */
function markOf(draft: MeshData): () => void {
  const [bindings, policies, register] = [draft.bindings.mark(), draft.policies.mark(), draft.register.mark()];
  return (): void => {
    draft.bindings.rollback(bindings);
    draft.policies.rollback(policies);
    draft.register.rollback(register);
  };
}

function fold(draft: MeshData): void {
  // The limits are in the generated mappings now.
  draft.adaptive.clear();
  draft.bindings.fold();
  draft.policies.fold();
  draft.register.fold();
}

/** The endpoints a draft changed, as watchers hear of them: only those, not a comparison of the whole register. */
function endpointEvents(draft: Register): EndpointEvent[] {
  const upserted: EndpointEvent[] = [];
  const removed: EndpointEvent[] = [];
  for (const id of draft.changedEndpointIds().sort(compareStrings)) {
    const now = draft.endpoint(id);
    const was = draft.baseEndpoint(id);
    if (now && (!was || !sameContent(was, now))) upserted.push({ type: 'TYPE_UPSERTED', endpoint: now });
    else if (!now && was) removed.push({ type: 'TYPE_REMOVED', endpoint: was });
  }
  return [...upserted, ...removed];
}

/** The write-ahead log record of a batch: what its draft touched, and the mappings that changed. */
function deltaOf(before: MeshData, draft: MeshData): StateDelta {
  return {
    version: draft.version,
    bindings: overlayDelta(draft.bindings, sameContent),
    policies: overlayDelta(draft.policies, sameContent),
    ...draft.register.delta(),
    mappings: diffMappings(before.generated.mappings, draft.generated.mappings),
  };
}

function toStored(data: MeshData): StoredState {
  return {
    version: data.version,
    bindings: [...data.bindings.values()].sort((a, b) => compareStrings(a.name, b.name)),
    policies: [...data.policies.values()].sort((a, b) => compareStrings(a.name, b.name)),
    endpoints: data.register.endpoints(),
    hosts: data.register.hosts(),
    mappings: data.generated.mappings,
  };
}
