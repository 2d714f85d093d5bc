import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DeviceMeshError, errorMessage } from '../src/errors';
import { validateBinding, validatePolicy } from '../src/model/validate';
import type { Binding, Host, Mapping, PhysicalEndpoint, Policy } from '../src/proto/types';
import { canonicalBinding, canonicalEndpoint, canonicalHost, canonicalMapping, canonicalPolicy } from './canonical';
import type { StateBackend } from './state-backend';
import { applyDelta, type StateDelta } from './state-delta';
import { appendRecord, decodeRecords } from './write-ahead-log';

export const STATE_FILE = 'state.json';
export const LOG_FILE = 'state.log';
const FORMAT = 'devicemesh-control-plane-state/1';
/** Below this a log is not worth folding into a snapshot, however small the snapshot. */
const DEFAULT_COMPACT_BYTES = 4 << 20;

/** Everything the control plane keeps across restarts. */
export interface StoredState {
  /** The version counter: only ever goes up. */
  version: number;
  bindings: Binding[];
  policies: Policy[];
  endpoints: PhysicalEndpoint[];
  hosts: Host[];
  /** The last generated mappings, kept so that their versions survive a restart. */
  mappings: Mapping[];
}

export interface LoadedState {
  state: StoredState;
  /** Log records replayed on top of the snapshot. */
  replayed: number;
  /** Bytes of a write torn by a crash at the end of the log, discarded. */
  tornBytes: number;
}

export interface WriteReport {
  /** Bytes appended to the log; 0 when the state was written as a snapshot instead. */
  logBytes: number;
  /** Bytes of the snapshot written (the first write, or the log folded into one); 0 if none. */
  snapshotBytes: number;
  /** Why folding the log into a snapshot failed; the change is durable in the log all the same, and the fold is tried again after the next write. */
  compactionError?: string;
}

/** One durable write: the change since the last one, and the whole state, built only when a snapshot is due. */
export interface StateWrite {
  delta: StateDelta;
  full(): StoredState;
}

export interface StateStoreOptions {
  /** The log is folded into a new snapshot once it is larger than this and than the snapshot. */
  compactBytes?: number;
}

interface Collections {
  bindings: Binding[];
  policies: Policy[];
  endpoints: PhysicalEndpoint[];
  hosts: Host[];
  mappings: Mapping[];
}

/**
 * The control plane's state in its data directory: a snapshot (`state.json`, replaced
 * atomically: temp file, fsync, rename, directory fsync) and a write-ahead log (`state.log`)
 * of the changes since, one record per write, each made durable before the write returns.
 * The first write of a process is a snapshot, which also empties the log; later ones append
 * the difference from the last write, and the log is folded into a new snapshot once it grows
 * larger than the snapshot.
 */
export class StateStore implements StateBackend {
  readonly file: string;
  readonly logFile: string;
  readonly description: string;
  private readonly compactBytes: number;
  /** Whether this process has written a snapshot the log continues; until then the next write is one. */
  private written = false;
  private logBytes = 0;
  private snapshotBytes = 0;

  constructor(
    readonly dataDir: string,
    options: StateStoreOptions = {},
  ) {
    this.file = path.join(dataDir, STATE_FILE);
    this.logFile = path.join(dataDir, LOG_FILE);
    this.description = dataDir;
    this.compactBytes = options.compactBytes ?? DEFAULT_COMPACT_BYTES;
  }

  /**
   * Reads the snapshot and replays the log; an absent snapshot is a fresh start. What was said
   * about the world before the restart is not believed yet: endpoints come back UNKNOWN and
   * hosts DISCONNECTED until their agents confirm them. A torn last log record is discarded;
   * any other damage is refused, since starting without part of the state would withdraw
   * mappings all over the mesh: a person must look.
   */
  async load(): Promise<LoadedState> {
    const snapshot = await readIfPresent(this.file);
    const log = (await readIfPresent(this.logFile)) ?? Buffer.alloc(0);
    if (!snapshot) {
      if (log.length > 0) throw corrupt(this.logFile, `there is no snapshot ${STATE_FILE} for it to continue`);
      return { state: { version: 0, bindings: [], policies: [], endpoints: [], hosts: [], mappings: [] }, replayed: 0, tornBytes: 0 };
    }
    let state = within(this.file, () => parseSnapshot(snapshot.toString('utf8')));
    const { records, tornBytes } = within(this.logFile, () => decodeRecords(log));
    let replayed = 0;
    let previous = 0;
    for (const record of records) {
      const delta = within(this.logFile, () => parseDelta(record.payload.toString('utf8')), `record at byte ${record.offset}: `);
      if (delta.version <= previous) {
        throw corrupt(this.logFile, `record at byte ${record.offset}: version ${delta.version} does not follow ${previous}`);
      }
      previous = delta.version;
      // Records the snapshot already holds: a crash came between writing it and emptying the log.
      if (delta.version <= state.version) continue;
      state = applyDelta(state, delta);
      replayed += 1;
    }
    return {
      state: {
        ...state,
        endpoints: state.endpoints.map((e) => ({ ...e, state: 'ENDPOINT_STATE_UNKNOWN' as const })),
        hosts: state.hosts.map((h) => ({ ...h, state: 'HOST_STATE_DISCONNECTED' as const })),
      },
      replayed,
      tornBytes,
    };
  }

  /** Makes a change durable: appended to the log, or as a snapshot of the whole state. */
  async save(write: StateWrite): Promise<WriteReport> {
    if (!this.written) return { logBytes: 0, snapshotBytes: await this.writeSnapshot(write.full()) };
    let logBytes: number;
    try {
      logBytes = await appendRecord(this.logFile, Buffer.from(encodeDelta(write.delta), 'utf8'));
    } catch (err) {
      // The append may have left part of a record behind: the next write starts afresh with a snapshot.
      this.written = false;
      throw cannotWrite(this.logFile, err);
    }
    this.logBytes += logBytes;
    if (this.logBytes <= Math.max(this.compactBytes, this.snapshotBytes)) return { logBytes, snapshotBytes: 0 };
    try {
      return { logBytes, snapshotBytes: await this.writeSnapshot(write.full()) };
    } catch (err) {
      return { logBytes, snapshotBytes: 0, compactionError: errorMessage(err) };
    }
  }

  /** Writes the whole state as the new snapshot, then empties the log it supersedes. */
  private async writeSnapshot(state: StoredState): Promise<number> {
    const text = JSON.stringify(toFile(state), null, 2) + '\n';
    const tmp = `${this.file}.tmp`;
    try {
      const created = await fs.mkdir(this.dataDir, { recursive: true });
      if (created) await syncDirectory(path.dirname(created));
      // Created before the directory is synced below, so that the log's entry is durable too.
      await (await fs.open(this.logFile, 'a', 0o600)).close();
      const fh = await fs.open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.file);
      await syncDirectory(this.dataDir);
    } catch (err) {
      throw cannotWrite(this.file, err);
    }
    try {
      // Only once the snapshot is durable may the records it holds go.
      const log = await fs.open(this.logFile, 'r+');
      try {
        await log.truncate(0);
        await log.sync();
      } finally {
        await log.close();
      }
    } catch (err) {
      throw cannotWrite(this.logFile, err);
    }
    this.written = true;
    this.logBytes = 0;
    this.snapshotBytes = Buffer.byteLength(text);
    return this.snapshotBytes;
  }
}

async function readIfPresent(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DeviceMeshError('UNAVAILABLE', `cannot read control-plane state ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function corrupt(file: string, why: string, cause?: unknown): DeviceMeshError {
  return new DeviceMeshError('INTERNAL', `control-plane state ${file} is corrupt: ${why}`, { cause });
}

function cannotWrite(file: string, err: unknown): DeviceMeshError {
  return new DeviceMeshError('UNAVAILABLE', `cannot write control-plane state ${file}: ${errorMessage(err)}`, { cause: err });
}

/** Runs a parse of (part of) `file`, reporting any failure as that file being corrupt. */
function within<T>(file: string, parse: () => T, where = ''): T {
  try {
    return parse();
  } catch (err) {
    throw corrupt(file, where + errorMessage(err), err);
  }
}

/** The snapshot's JSON form, shared with the etcd store. */
export function toFile(state: StoredState): Record<string, unknown> {
  const { version, ...collections } = state;
  return { format: FORMAT, version: String(version), ...collections };
}

export function encodeDelta(delta: StateDelta): string {
  return JSON.stringify({ ...delta, version: String(delta.version) });
}

type RawCollections = Record<keyof Collections, Record<string, unknown>[]>;

export function parseSnapshot(text: string): StoredState {
  const raw = parseObject(text);
  if (raw.format !== FORMAT) throw new DeviceMeshError('INVALID_DOCUMENT', `format is ${JSON.stringify(raw.format)}, expected "${FORMAT}"`);
  const list = (field: keyof Collections): Record<string, unknown>[] => objects(raw[field] ?? [], field);
  const version = parseVersion(raw.version);
  return { version, ...parseCollections({ bindings: list('bindings'), policies: list('policies'), endpoints: list('endpoints'), hosts: list('hosts'), mappings: list('mappings') }) };
}

export function parseDelta(text: string): StateDelta {
  const raw = parseObject(text);
  const list = (field: keyof Collections): { put: Record<string, unknown>[]; remove: string[] } => {
    const value = raw[field];
    if (!isRecord(value)) throw new DeviceMeshError('INVALID_DOCUMENT', `${field} is not an object`);
    if (!Array.isArray(value.remove) || !value.remove.every((k): k is string => typeof k === 'string')) {
      throw new DeviceMeshError('INVALID_DOCUMENT', `${field}.remove is not a list of strings`);
    }
    return { put: objects(value.put, `${field}.put`), remove: value.remove };
  };
  const version = parseVersion(raw.version);
  const [bindings, policies, endpoints, hosts, mappings] = [list('bindings'), list('policies'), list('endpoints'), list('hosts'), list('mappings')];
  const put = parseCollections({ bindings: bindings.put, policies: policies.put, endpoints: endpoints.put, hosts: hosts.put, mappings: mappings.put });
  return {
    version,
    bindings: { put: put.bindings, remove: bindings.remove },
    policies: { put: put.policies, remove: policies.remove },
    endpoints: { put: put.endpoints, remove: endpoints.remove },
    hosts: { put: put.hosts, remove: hosts.remove },
    mappings: { put: put.mappings, remove: mappings.remove },
  };
}

/** Documents come back through the same canonical shapes and checks as when they were applied. */
function parseCollections(raw: RawCollections): Collections {
  const bindings = raw.bindings.map((b) => canonicalBinding(b as Partial<Binding>));
  const policies = raw.policies.map((p) => canonicalPolicy(p as Partial<Policy>));
  for (const p of policies) validatePolicy(`policy/${p.name}`, p);
  for (const b of bindings) validateBinding(b);
  return {
    bindings,
    policies,
    endpoints: raw.endpoints.map((e) => canonicalEndpoint(e as Partial<PhysicalEndpoint>)),
    hosts: raw.hosts.map((h) => canonicalHost(h as Partial<Host>)),
    mappings: raw.mappings.map((m) => canonicalMapping(m as Partial<Mapping>)),
  };
}

function parseObject(text: string): Record<string, unknown> {
  const raw: unknown = JSON.parse(text);
  if (!isRecord(raw)) throw new DeviceMeshError('INVALID_DOCUMENT', 'not a JSON object');
  return raw;
}

function parseVersion(value: unknown): number {
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new DeviceMeshError('INVALID_DOCUMENT', `version ${JSON.stringify(value)} is not a decimal integer`);
  }
  return Number(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objects(value: unknown, field: string): Record<string, unknown>[] {
  if (!Array.isArray(value) || !value.every(isRecord)) throw new DeviceMeshError('INVALID_DOCUMENT', `${field} is not a list of objects`);
  return value;
}
