import { isDeepStrictEqual } from 'node:util';
import { errorMessage, ValidationError } from '../src/errors';
import type { Logger } from '../src/log';
import type { Mapping } from '../src/proto/types';
import type { ErrorPayload } from '../src/socket-plane/control-messages';
import type { DeviceInventory } from './device-inventory';
import { deviceConfig } from './device/device-config';
import type { MappingTable } from './mapping-table';

/** What applying one mapping update came to: the ADS handler ACKs or NACKs with it. */
export type MappingVerdict = { ack: true; version: string } | { ack: false; version: string; error: ValidationError };

export interface DeviceConfiguratorOptions {
  mappings: MappingTable;
  devices: Pick<DeviceInventory, 'get'>;
  log: Logger;
}

/** Why the sessions of a mapping that is gone (or moved to another device or workload) are reset. */
export function withdrawn(mappingId: string): ErrorPayload {
  return { code: 'NOT_FOUND', message: `binding withdrawn (mapping ${mappingId})` };
}

/**
 * Validates and applies the agent's mapping updates, one at a time, and answers each with its
 * verdict. Mapping by mapping, as Envoy does with listeners: a mapping the table refuses, whose
 * configuration its device's driver refuses, or whose device fails to take the change keeps its
 * last good version (a new one stays out); the rest apply, and the update is NACKed with every
 * reason. Devices are reconfigured before the table changes, so the table never shows a
 * configuration its device does not have; sessions are reset or retuned after.
 */
export class DeviceConfigurator {
  private applying: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: DeviceConfiguratorOptions) {}

  /** Applies a state-of-the-world update after the ones before it. */
  apply(resources: readonly unknown[], version: string): Promise<MappingVerdict> {
    const verdict = this.applying.then(() => this.applyNow(resources, version));
    this.applying = verdict.catch(() => undefined);
    return verdict;
  }

  private async applyNow(resources: readonly unknown[], version: string): Promise<MappingVerdict> {
    const { mappings, devices } = this.options;
    const plan = mappings.plan(resources, version);
    const { next } = plan;
    const problems = [...plan.problems];
    const keepPrevious = (m: Mapping, previous: Mapping | undefined, problem: string): void => {
      problems.push(`mapping ${m.id}: ${problem}`);
      if (previous) next.set(m.id, previous);
      else next.delete(m.id);
    };

    for (const m of plan.added) {
      const refused = this.refusal(m);
      if (refused !== undefined) keepPrevious(m, undefined, refused);
    }
    const moved: Mapping[] = [];
    const retuned: Mapping[] = [];
    const reconfigured: Array<[Mapping, Mapping]> = [];
    for (const [m, old] of plan.changed) {
      const refused = this.refusal(m);
      if (refused !== undefined) keepPrevious(m, old, refused);
      else if (old.devicePath !== m.devicePath || old.workloadId !== m.workloadId) moved.push(old);
      else if (isDeepStrictEqual(old.serial, m.serial) && isDeepStrictEqual(old.settings, m.settings)) retuned.push(m);
      else reconfigured.push([m, old]);
    }
    const failures = await Promise.all(reconfigured.map(([m]) => this.reconfigure(m)));
    reconfigured.forEach(([m, old], i) => {
      const failure = failures[i];
      if (failure === undefined) retuned.push(m);
      else keepPrevious(m, old, failure);
    });

    mappings.commit(next, version);
    for (const m of [...plan.removed, ...moved]) devices.get(m.devicePath)?.host.resetMapping(m.id, withdrawn(m.id));
    for (const m of retuned) devices.get(m.devicePath)?.host.retune(m);
    if (problems.length === 0) return { ack: true, version };
    return { ack: false, version, error: new ValidationError(`mappings version ${version}`, problems.join('; ')) };
  }

  /** The driver's reason for refusing a mapping's configuration, while its device is here to ask. */
  private refusal(m: Mapping): string | undefined {
    const record = this.options.devices.get(m.devicePath);
    if (!record) return undefined;
    try {
      record.driver.validate(deviceConfig(m));
      return undefined;
    } catch (err) {
      return errorMessage(err);
    }
  }

  /** Applies a changed configuration to the device while it has sessions of the mapping; the reason when it refuses. */
  private async reconfigure(m: Mapping): Promise<string | undefined> {
    const host = this.options.devices.get(m.devicePath)?.host;
    if (!host) return undefined;
    try {
      if (await host.update(m)) this.options.log.info({ mapping: m.id, device: m.devicePath, serial: m.serial, settings: m.settings }, 'device configuration updated');
      return undefined;
    } catch (err) {
      this.options.log.warn({ mapping: m.id, device: m.devicePath, error: errorMessage(err) }, 'device refused the configuration');
      return `device ${m.devicePath} refused the configuration: ${errorMessage(err)}`;
    }
  }
}
