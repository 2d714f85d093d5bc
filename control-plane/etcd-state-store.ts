import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { DeviceMeshError, errorMessage } from '../src/errors';
import { type CatchUp, type StateBackend, StaleStateError } from './state-backend';
import { applyDelta, type StateDelta } from './state-delta';
import { encodeDelta, type LoadedState, parseDelta, parseSnapshot, type StateWrite, type StoredState, toFile, type WriteReport } from './state-store';

export interface EtcdStateStoreOptions {
  /** etcd client URLs, e.g. http://127.0.0.1:2379. */
  endpoints: readonly string[];
  /** Every key lives under this prefix (default /devicemesh/): one mesh per prefix. */
  prefix?: string;
  /** The log is folded into a snapshot after this many records (default 1000). */
  compactRecords?: number;
}

const EMPTY: StoredState = { version: 0, bindings: [], policies: [], endpoints: [], hosts: [], mappings: [] };
/** Wide enough for any safe integer: keys sort as their versions do. */
const VERSION_DIGITS = 16;

/**
 * The control plane's state in etcd, shared by its replicas: `<prefix>version` (the version
 * counter), `<prefix>log/<version>` (one record per committed batch, as in the embedded store's
 * log) and `<prefix>snapshot` (the state the log continues). A write is one transaction that
 * succeeds only if the counter is still at the version before it, so versions stay one sequence
 * across replicas; a replica that lost the race catches up and tries again. Every replica watches
 * the log and applies the others' records.
 */
export class EtcdStateStore implements StateBackend {
  readonly description: string;
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly compactRecords: number;
  /** The etcd revision the last load or catch-up read at: following starts after it. */
  private revision = '0';
  private records = 0;
  private watcher: Watcher | undefined;

  constructor(options: EtcdStateStoreOptions) {
    if (options.endpoints.length === 0) throw new DeviceMeshError('INVALID_ARGUMENT', 'the etcd state store needs at least one endpoint');
    this.prefix = options.prefix ?? '/devicemesh/';
    this.compactRecords = options.compactRecords ?? 1000;
    this.description = `etcd ${options.endpoints.join(',')} ${this.prefix}`;
    this.client = new Etcd3({ hosts: [...options.endpoints], dialTimeout: 5000 });
  }

  /** Unlike a data directory, the state is not reset on load: the other replicas still serve it. */
  async load(): Promise<LoadedState> {
    const { base, records } = await this.readAll();
    let replayed = 0;
    let current = base;
    for (const delta of records) {
      if (delta.version <= current.version) continue;
      current = applyDelta(current, delta);
      replayed += 1;
    }
    this.records = records.length;
    return { state: current, replayed, tornBytes: 0 };
  }

  async save(write: StateWrite): Promise<WriteReport> {
    const { version } = write.delta;
    const record = encodeDelta(write.delta);
    const result = await this.etcd('write', () =>
      this.counterIs(version - 1)
        .then(this.client.put(this.key('version')).value(String(version)), this.client.put(this.logKey(version)).value(record))
        .commit(),
    );
    if (!result.succeeded) throw new StaleStateError(version);
    this.records += 1;
    const report: WriteReport = { logBytes: Buffer.byteLength(record), snapshotBytes: 0 };
    if (this.records < this.compactRecords) return report;
    const snapshot = JSON.stringify(toFile(write.full()));
    try {
      // Only while the counter is still ours: a newer record must not be deleted with the old ones.
      const folded = await this.etcd('compaction', () =>
        this.counterIs(version)
          .then(this.client.put(this.key('snapshot')).value(snapshot), this.client.delete().prefix(this.key('log/')))
          .commit(),
      );
      if (folded.succeeded) {
        this.records = 0;
        report.snapshotBytes = Buffer.byteLength(snapshot);
      }
    } catch (err) {
      report.compactionError = errorMessage(err);
    }
    return report;
  }

  async follow(listener: (delta: StateDelta) => void, onError: (error: DeviceMeshError) => void): Promise<void> {
    const next = String(BigInt(this.revision) + 1n);
    this.watcher = await this.etcd('watch', () => this.client.watch().prefix(this.key('log/')).startRevision(next).create());
    this.watcher.on('put', (kv: IKeyValue) => {
      try {
        listener(parseDelta(kv.value.toString('utf8')));
      } catch (err) {
        onError(new DeviceMeshError('INTERNAL', `etcd state record ${kv.key.toString()} is corrupt: ${errorMessage(err)}`, { cause: err }));
      }
    });
    this.watcher.on('error', (err: Error) => onError(new DeviceMeshError('UNAVAILABLE', `etcd watch: ${err.message}`, { cause: err })));
  }

  async catchUp(version: number): Promise<CatchUp> {
    const { base, records } = await this.readAll();
    const after = records.filter((d) => d.version > version);
    // The records since `version` are all there only if the snapshot is not newer than it.
    if (base.version <= version) return { deltas: after };
    let current = base;
    for (const d of after) current = applyDelta(current, d);
    return { state: current };
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
    this.client.close();
  }

  /** The snapshot and every record, read at one revision. */
  private async readAll(): Promise<{ base: StoredState; records: StateDelta[] }> {
    const res = await this.etcd('read', () => this.client.getAll().prefix(this.prefix).exec());
    this.revision = res.header.revision;
    let base = EMPTY;
    const records: StateDelta[] = [];
    let counter = 0;
    for (const kv of res.kvs) {
      const key = kv.key.toString().slice(this.prefix.length);
      const text = kv.value.toString('utf8');
      const parse = <T>(fn: () => T): T => {
        try {
          return fn();
        } catch (err) {
          throw new DeviceMeshError('INTERNAL', `etcd state ${this.prefix}${key} is corrupt: ${errorMessage(err)}`, { cause: err });
        }
      };
      if (key === 'snapshot') base = parse(() => parseSnapshot(text));
      else if (key === 'version') counter = Number(text);
      else if (key.startsWith('log/')) records.push(parse(() => parseDelta(text)));
    }
    // Keys come sorted: the log continues the snapshot without a gap and ends at the counter.
    let last = base.version;
    for (const d of records) {
      if (d.version !== last + 1) throw new DeviceMeshError('INTERNAL', `etcd state log skips from ${last} to ${d.version}`);
      last = d.version;
    }
    if (last !== counter) throw new DeviceMeshError('INTERNAL', `etcd state: the counter says ${counter}, the log ends at ${last}`);
    return { base, records };
  }

  private counterIs(version: number): ReturnType<Etcd3['if']> {
    return version === 0 ? this.client.if(this.key('version'), 'Create', '==', 0) : this.client.if(this.key('version'), 'Value', '==', String(version));
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  private logKey(version: number): string {
    return this.key(`log/${String(version).padStart(VERSION_DIGITS, '0')}`);
  }

  private async etcd<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new DeviceMeshError('UNAVAILABLE', `etcd ${what} failed (${this.description}): ${errorMessage(err)}`, { cause: err });
    }
  }
}
