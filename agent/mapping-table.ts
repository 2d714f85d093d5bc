import { EventEmitter } from 'node:events';
import { isDeepStrictEqual } from 'node:util';
import { ValidationError } from '../src/errors';
import type { Mapping } from '../src/proto/types';

/**
 * The mappings the control plane gave this agent, from the discovery stream's state-of-the-world
 * updates. Each update is validated mapping by mapping: the good ones are applied, a bad one
 * keeps its last good version (if any) and makes apply() throw, which the ADS client turns into
 * a NACK, as Envoy does with a bad listener.
 *
 * Events: `added` (Mapping), `changed` (Mapping, previous: Mapping), `removed` (Mapping).
 */
export class MappingTable extends EventEmitter {
  private readonly mappings = new Map<string, Mapping>();
  private appliedVersion: string | undefined;

  constructor(private readonly hostId: string) {
    super();
  }

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

  /** An ADS ResourceHandler for MAPPING_TYPE_URL. */
  apply(resources: readonly unknown[], version: string): void {
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

    this.mappings.clear();
    for (const [id, m] of next) this.mappings.set(id, m);
    this.appliedVersion = version;
    for (const m of removed) this.emit('removed', m);
    for (const [m, old] of changed) this.emit('changed', m, old);
    for (const m of added) this.emit('added', m);

    if (problems.length > 0) throw new ValidationError(`mappings version ${version}`, problems.join('; '));
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
