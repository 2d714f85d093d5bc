import { isDeepStrictEqual } from 'node:util';
import type { Mapping } from '../src/proto/types';

/**
 * What a state-of-the-world update of the mappings comes to against the table, before anything
 * is applied: the set it asks for (each good mapping, and each bad one's last good version, if
 * any, as Envoy keeps a bad listener's), the problems of the bad ones, and the difference.
 */
export interface MappingPlan {
  version: string;
  next: Map<string, Mapping>;
  /** One per refused resource: "mapping <id>: <reason>" (or "mapping #<index>: …" without an id). */
  problems: string[];
  added: Mapping[];
  /** [the new version, the one it replaces]. */
  changed: Array<[Mapping, Mapping]>;
  removed: Mapping[];
}

/**
 * The mappings the control plane gave this agent, as the DeviceConfigurator last applied them.
 * `plan` checks an update against it (pure); `commit` makes a set the current one.
 */
export class MappingTable {
  private readonly mappings = new Map<string, Mapping>();
  private appliedVersion: string | undefined;

  constructor(private readonly hostId: string) {}

  get(id: string): Mapping | undefined {
    return this.mappings.get(id);
  }

  all(): Mapping[] {
    return [...this.mappings.values()];
  }

  /** Version of the last update applied (even partly); undefined before the first. */
  get version(): string | undefined {
    return this.appliedVersion;
  }

  /** Checks each resource of an update and compares the set it asks for with the table's; changes nothing. */
  plan(resources: readonly unknown[], version: string): MappingPlan {
    const next = new Map<string, Mapping>();
    const problems: string[] = [];
    resources.forEach((resource, index) => {
      const problem = this.check(resource, next);
      const id = idOf(resource);
      if (problem === undefined) {
        next.set(id, resource as Mapping);
        return;
      }
      problems.push(`mapping ${id || `#${index}`}: ${problem}`);
      const lastGood = id ? this.mappings.get(id) : undefined;
      if (lastGood && !next.has(id)) next.set(id, lastGood);
    });

    const removed: Mapping[] = [];
    for (const [id, old] of this.mappings) if (!next.has(id)) removed.push(old);
    const added: Mapping[] = [];
    const changed: Array<[Mapping, Mapping]> = [];
    for (const [id, m] of next) {
      const old = this.mappings.get(id);
      if (!old) added.push(m);
      else if (old !== m && !isDeepStrictEqual(old, m)) changed.push([m, old]);
    }
    return { version, next, problems, added, changed, removed };
  }

  /** Makes `mappings` the table, at `version`. */
  commit(mappings: ReadonlyMap<string, Mapping>, version: string): void {
    this.mappings.clear();
    for (const [id, m] of mappings) this.mappings.set(id, m);
    this.appliedVersion = version;
  }

  private check(resource: unknown, accepted: Map<string, Mapping>): string | undefined {
    if (typeof resource !== 'object' || resource === null) return 'is not a message';
    const m = resource as Partial<Mapping>;
    if (typeof m.id !== 'string' || m.id === '') return 'id is empty';
    if (accepted.has(m.id)) return 'appears twice in the update';
    if (m.hostId !== this.hostId) return `is for host "${String(m.hostId)}", not this host "${this.hostId}"`;
    if (typeof m.devicePath !== 'string' || m.devicePath === '') return 'devicePath is empty';
    if (typeof m.workloadId !== 'string' || m.workloadId === '') return 'workloadId is empty';
    return undefined;
  }
}

function idOf(resource: unknown): string {
  const id = typeof resource === 'object' && resource !== null ? (resource as { id?: unknown }).id : undefined;
  return typeof id === 'string' ? id : '';
}
