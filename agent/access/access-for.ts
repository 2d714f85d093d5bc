import type { Logger } from '../../src/log';
import type { Mapping } from '../../src/proto/types';
import type { Stats } from '../../src/telemetry/stats';
import type { DeviceCapacity } from '../limits/device-capacity';
import { BroadcastAccess } from './broadcast-access';
import { type AccessMember, type DeviceAccess, type DeviceSink, sharingOf } from './device-access';
import { ExchangeAccess } from './exchange-access';
import { ExclusiveAccess } from './exclusive-access';

export interface AccessContext {
  members: readonly AccessMember[];
  device: DeviceSink;
  capacity: DeviceCapacity;
  stats: Stats;
  log: Logger;
}

/** The strategy of the sharing mode `mapping` asks for: the first session's mapping picks it. */
export function accessFor(mapping: Mapping, context: AccessContext): DeviceAccess {
  const sharing = sharingOf(mapping);
  const policy = mapping.policy;
  if ((sharing === 'SHARING_MODE_SHARED' || sharing === 'SHARING_MODE_TIME_SLICE') && policy) {
    return new ExchangeAccess({ ...context, sharing, policy, mapping });
  }
  if (sharing === 'SHARING_MODE_BROADCAST') return new BroadcastAccess(context.members, context.device);
  return new ExclusiveAccess(context.members, context.device);
}
