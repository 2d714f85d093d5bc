import type { Policy } from '../proto/types';

/** A Policy with every field at proto3's zero value ("not set"), to build others from. */
export const EMPTY_POLICY: Readonly<Policy> = Object.freeze({
  name: '',
  workloads: [],
  access: 'ACCESS_UNSPECIFIED',
  sharing: 'SHARING_MODE_UNSPECIFIED',
  bytesPerSecond: '0',
  queueDepth: 0,
  commandTimeoutMs: 0,
  priority: 0,
  pinSerial: false,
  commandsPerSecond: 0,
  burstBytes: '0',
  burstCommands: 0,
  overLimit: 'OVER_LIMIT_UNSPECIFIED',
  requestTerminator: '',
  response: null,
  perConsumerQueue: 0,
  timeSliceMs: 0,
  weight: 0,
  unsolicitedOwner: '',
  waitWhenBusy: false,
  readyPattern: '',
  minBytesPerSecond: '0',
  deviceBytesPerSecond: '0',
});
