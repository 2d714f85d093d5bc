import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DeviceMeshError, errorMessage } from '../src/errors';
import { validateBinding, validatePolicy } from '../src/model/validate';
import type { Binding, Host, Mapping, PhysicalEndpoint, Policy } from '../src/proto/types';
import { canonicalBinding, canonicalEndpoint, canonicalHost, canonicalMapping, canonicalPolicy } from './canonical';

export const STATE_FILE = 'state.json';
const FORMAT = 'devicemesh-control-plane-state/1';

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

interface StateFile {
  format: string;
  version: string;
  bindings: Binding[];
  policies: Policy[];
  endpoints: PhysicalEndpoint[];
  hosts: Host[];
  mappings: Mapping[];
}

/** The control plane's state in one JSON file in its data directory, replaced atomically. */
export class StateStore {
  readonly file: string;

  constructor(readonly dataDir: string) {
    this.file = path.join(dataDir, STATE_FILE);
  }

  /**
   * Reads the state; an absent file is a fresh start. What was said about the world before the
   * restart is not believed yet: endpoints come back UNKNOWN and hosts DISCONNECTED until their
   * agents confirm them.
   */
  async load(): Promise<StoredState> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return { version: 0, bindings: [], policies: [], endpoints: [], hosts: [], mappings: [] };
      }
      throw new DeviceMeshError('UNAVAILABLE', `cannot read control-plane state ${this.file}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      return parseState(text);
    } catch (err) {
      // Starting empty would withdraw every mapping in the mesh: refuse and let a person look.
      throw new DeviceMeshError('INTERNAL', `control-plane state ${this.file} is corrupt: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** Write a temp file, fsync it, rename it over the state file, fsync the directory. */
  async save(state: StoredState): Promise<void> {
    const body: StateFile = {
      format: FORMAT,
      version: String(state.version),
      bindings: state.bindings,
      policies: state.policies,
      endpoints: state.endpoints,
      hosts: state.hosts,
      mappings: state.mappings,
    };
    const tmp = `${this.file}.tmp`;
    try {
      await fs.mkdir(this.dataDir, { recursive: true });
      const fh = await fs.open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(body, null, 2) + '\n', 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, this.file);
      const dir = await fs.open(this.dataDir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      throw new DeviceMeshError('UNAVAILABLE', `cannot write control-plane state ${this.file}: ${errorMessage(err)}`, { cause: err });
    }
  }
}

function parseState(text: string): StoredState {
  const raw: unknown = JSON.parse(text);
  if (!isRecord(raw)) throw new DeviceMeshError('INVALID_DOCUMENT', 'not a JSON object');
  if (raw.format !== FORMAT) throw new DeviceMeshError('INVALID_DOCUMENT', `format is ${JSON.stringify(raw.format)}, expected "${FORMAT}"`);
  if (typeof raw.version !== 'string' || !/^\d+$/.test(raw.version) || !Number.isSafeInteger(Number(raw.version))) {
    throw new DeviceMeshError('INVALID_DOCUMENT', `version ${JSON.stringify(raw.version)} is not a decimal integer`);
  }
  const bindings = list(raw, 'bindings').map((b) => canonicalBinding(b as Partial<Binding>));
  const policies = list(raw, 'policies').map((p) => canonicalPolicy(p as Partial<Policy>));
  for (const p of policies) validatePolicy(`policy/${p.name}`, p);
  for (const b of bindings) validateBinding(b);
  return {
    version: Number(raw.version),
    bindings,
    policies,
    endpoints: list(raw, 'endpoints').map((e) => canonicalEndpoint({ ...(e as Partial<PhysicalEndpoint>), state: 'ENDPOINT_STATE_UNKNOWN' })),
    hosts: list(raw, 'hosts').map((h) => canonicalHost({ ...(h as Partial<Host>), state: 'HOST_STATE_DISCONNECTED' })),
    mappings: list(raw, 'mappings').map((m) => canonicalMapping(m as Partial<Mapping>)),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function list(raw: Record<string, unknown>, field: string): Record<string, unknown>[] {
  const value = raw[field] ?? [];
  if (!Array.isArray(value) || !value.every(isRecord)) throw new DeviceMeshError('INVALID_DOCUMENT', `${field} is not a list of objects`);
  return value;
}
