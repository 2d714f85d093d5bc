import type { Mapping } from '../../src/proto/types';
import type { DeviceConfig } from '../drivers/device-driver';

/** The configuration a mapping asks of its device. */
export function deviceConfig(mapping: Mapping): DeviceConfig {
  return { serial: mapping.serial, settings: mapping.settings ?? {} };
}
