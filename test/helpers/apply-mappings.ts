import { DeviceConfigurator } from '../../agent/device-configurator';
import type { DeviceInventory } from '../../agent/device-inventory';
import type { MappingTable } from '../../agent/mapping-table';
import type { Logger } from '../../src/log';

/** Applies a mapping set as the agent's ADS handler does; a NACK throws, failing the test's setup. */
export async function applyMappings(mappings: MappingTable, devices: DeviceInventory, resources: readonly unknown[], log: Logger, version = '1'): Promise<void> {
  const verdict = await new DeviceConfigurator({ mappings, devices, log }).apply(resources, version);
  if (!verdict.ack) throw verdict.error;
}
