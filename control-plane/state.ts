import { errorMessage, NotFoundError } from '../src/errors';
import type { Logger } from '../src/log';
import type { Binding, BindingStatus, EndpointEvent, Host, Mapping, PhysicalEndpoint, Policy, Timestamp } from '../src/proto/types';
import { canonicalBinding, canonicalPolicy, compareStrings, sameContent, timestampOf } from './canonical';
import { checkApply, checkPolicyDelete } from './conflicts';
import { GroupCommit, type Outcome } from './group-commit';
import { generateMappings } from './mapping-generator';
import { Register } from './register';
import { checkApplyRequest, checkDeleteRequest, checkEndpointReport } from './request-checks';
import type { StateStore, StoredState, WriteReport } from './state-store';

export interface ApplyResult {
  /** One line per document, e.g. "binding/app1-modem created". */
  results: string[];
  version: string;
}

export type CommitListener = (mappings: readonly Mapping[], version: string) => void;
export type EndpointListener = (event: EndpointEvent) => void;

interface MeshData {
  version: number;
  bindings: Map<string, Binding>;
  policies: Map<string, Policy>;
  register: Register;
  mappings: Mapping[];
  statuses: BindingStatus[];
}

interface Change<T> {
  value: T;
  /** False when the request turned out to change nothing: no new version, no write. */
  changed: boolean;
}

/** One mutation as the group commit runs it: changes the draft (or throws), says whether it did. */
type Job = (draft: MeshData, now: Timestamp) => boolean;

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

  private constructor(
    private readonly store: StateStore,
    private readonly log: Logger,
    private readonly clock: () => Date,
    private data: MeshData,
  ) {}

  /** Loads the data directory and records the restart as a new version. */
  static async open(store: StateStore, log: Logger, clock: () => Date = () => new Date()): Promise<ControlPlaneState> {
    const { state: stored, replayed, tornBytes } = await store.load();
    if (tornBytes > 0) log.warn({ file: store.logFile, bytes: tornBytes }, 'discarded the torn last record of the state log (a crash interrupted its write)');
    const state = new ControlPlaneState(store, log, clock, {
      version: stored.version,
      bindings: new Map(stored.bindings.map((b) => [b.name, b])),
      policies: new Map(stored.policies.map((p) => [p.name, p])),
      register: new Register(stored.endpoints, stored.hosts),
      mappings: stored.mappings,
      statuses: [],
    });
    // Endpoints are unknown and hosts disconnected now, and no version handed out before the
    // restart may be handed out again for different content: this is a change like any other.
    await state.mutate(() => ({ value: undefined, changed: true }));
    log.info({ version: state.version(), dataDir: store.dataDir, bindings: stored.bindings.length, replayed }, 'state loaded');
    return state;
  }

  version(): string {
    return String(this.data.version);
  }

  endpoints(hostId?: string): PhysicalEndpoint[] {
    return this.data.register.endpoints(hostId);
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
    return this.data.statuses;
  }

  policies(): Policy[] {
    return [...this.data.policies.values()].sort((a, b) => compareStrings(a.name, b.name));
  }

  mappings(filter: { workloadId?: string; hostId?: string } = {}): Mapping[] {
    return this.data.mappings.filter(
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
      checkApply({ bindings: [...draft.bindings.values()], policies: [...draft.policies.values()] }, draft.register.endpoints(), {
        bindings,
        policies,
      });
      const results: string[] = [];
      let changed = false;
      const put = <T extends { name: string }>(kind: string, map: Map<string, T>, doc: T): void => {
        const old = map.get(doc.name);
        const outcome = !old ? 'created' : sameContent(old, doc) ? 'unchanged' : 'configured';
        if (outcome !== 'unchanged') {
          map.set(doc.name, doc);
          changed = true;
        }
        results.push(`${kind}/${doc.name} ${outcome}`);
      };
      for (const p of policies) put('policy', draft.policies, p);
      for (const b of bindings) put('binding', draft.bindings, b);
      return { value: results, changed };
    });
    for (const line of value) this.log.info({ version, result: line }, 'document applied');
    return { results: value, version };
  }

  /** Deletes a binding (its mapping is withdrawn) or an unused policy; returns the new version. */
  async delete(kind: string, name: string): Promise<string> {
    checkDeleteRequest(kind, name);
    const { version } = await this.mutate((draft) => {
      const map: Map<string, unknown> = kind === 'binding' ? draft.bindings : draft.policies;
      if (!map.has(name)) throw new NotFoundError(`${kind}/${name} does not exist`);
      if (kind === 'policy') checkPolicyDelete(name, [...draft.bindings.values()]);
      map.delete(name);
      return { value: undefined, changed: true };
    });
    this.log.info({ version, document: `${kind}/${name}` }, 'document deleted');
    return version;
  }

  async registerEndpoint(reported: PhysicalEndpoint): Promise<PhysicalEndpoint> {
    checkEndpointReport(reported);
    const { value, version } = await this.mutate((draft, now) => ({ value: draft.register.reportEndpoint(reported, now), changed: true }));
    this.log.info({ version, endpoint: value.id, path: value.path, kind: value.kind }, 'endpoint registered');
    return value;
  }

  async deregisterEndpoint(id: string, markAbsent: boolean): Promise<void> {
    const { version } = await this.mutate((draft, now) => {
      const found = markAbsent ? draft.register.markAbsent(id, now) !== undefined : draft.register.removeEndpoint(id);
      if (!found) throw new NotFoundError(`endpoint ${id} is not in the register`);
      return { value: undefined, changed: true };
    });
    this.log.info({ version, endpoint: id, markAbsent }, markAbsent ? 'endpoint absent' : 'endpoint removed');
  }

  async hostConnected(id: string, socketPlaneAddress: string): Promise<void> {
    await this.mutate((draft, now) => ({ value: draft.register.hostConnected(id, socketPlaneAddress, now), changed: true }));
  }

  async hostDisconnected(id: string): Promise<void> {
    await this.mutate((draft, now) => ({ value: undefined, changed: draft.register.hostDisconnected(id, now) !== undefined }));
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

  private async commitBatch(jobs: readonly Job[]): Promise<Outcome<string>[]> {
    const before = this.data;
    const now = timestampOf(this.clock());
    let draft = before;
    let changed = false;
    const refusals = jobs.map((job): { error: unknown } | undefined => {
      const trial = copyOf(draft);
      try {
        if (job(trial, now)) changed = true;
      } catch (error) {
        return { error };
      }
      draft = trial;
      return undefined;
    });
    const answer = (success: Outcome<string>): Outcome<string>[] => refusals.map((r) => (r ? { ok: false, error: r.error } : success));
    if (!changed) return answer({ ok: true, value: String(before.version) });

    draft.version += 1;
    const generated = generateMappings({
      bindings: [...draft.bindings.values()],
      policies: [...draft.policies.values()],
      endpoints: draft.register.endpoints(),
      hosts: draft.register.hosts(),
      version: String(draft.version),
      previous: before.mappings,
    });
    draft.mappings = generated.mappings;
    draft.statuses = generated.statuses;
    let report: WriteReport;
    try {
      report = await this.store.save(toStored(draft));
    } catch (error) {
      return answer({ ok: false, error });
    }
    this.data = draft;
    this.logWrite(report, jobs.length);
    this.publish(before, draft);
    return answer({ ok: true, value: String(draft.version) });
  }

  private logWrite(report: WriteReport, jobs: number): void {
    const { logBytes, snapshotBytes, compactionError } = report;
    this.log.debug({ version: this.data.version, jobs, logBytes, snapshotBytes }, 'state written');
    if (compactionError) {
      this.log.warn({ error: compactionError }, 'cannot fold the state log into a snapshot; the log keeps growing until a later attempt succeeds');
    }
  }

  private publish(before: MeshData, after: MeshData): void {
    const events: EndpointEvent[] = [];
    for (const e of after.register.endpoints()) {
      const old = before.register.endpoint(e.id);
      if (!old || !sameContent(old, e)) events.push({ type: 'TYPE_UPSERTED', endpoint: e });
    }
    for (const e of before.register.endpoints()) {
      if (!after.register.endpoint(e.id)) events.push({ type: 'TYPE_REMOVED', endpoint: e });
    }
    // A listener's failure is its own: the change is committed and the others must hear of it.
    const notify = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        this.log.error({ error: errorMessage(err) }, 'state listener failed');
      }
    };
    for (const event of events) for (const l of [...this.endpointListeners]) notify(() => l(event));
    for (const l of this.commitListeners) notify(() => l(after.mappings, String(after.version)));
  }
}

function copyOf(data: MeshData): MeshData {
  return { ...data, bindings: new Map(data.bindings), policies: new Map(data.policies), register: data.register.clone() };
}

function toStored(data: MeshData): StoredState {
  return {
    version: data.version,
    bindings: [...data.bindings.values()].sort((a, b) => compareStrings(a.name, b.name)),
    policies: [...data.policies.values()].sort((a, b) => compareStrings(a.name, b.name)),
    endpoints: data.register.endpoints(),
    hosts: data.register.hosts(),
    mappings: data.mappings,
  };
}
