import type { Policy, ResponseFraming } from '../proto/types';

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
  units: [],
  roamingHoldMs: 0,
});

/** A line: what a command's response is when the policy does not say. */
export const DEFAULT_RESPONSE: Readonly<ResponseFraming> = Object.freeze({
  kind: 'RESPONSE_FRAMING_TERMINATOR',
  terminator: '\n',
  length: 0,
  pattern: '',
  idleGapMs: 0,
});

/** A quarter of the queue, so that one consumer cannot fill it alone. */
export function perConsumerQueueFor(queueDepth: number): number {
  return Math.max(1, Math.floor(queueDepth / 4));
}

/**
 * What a binding gets for every field its policies leave unset: the control plane merges it
 * under them, and the agent falls back on it for a mapping that does not carry a value.
 */
export const DEFAULT_POLICY: Readonly<Policy> = Object.freeze({
  ...EMPTY_POLICY,
  access: 'ACCESS_READ_WRITE',
  sharing: 'SHARING_MODE_EXCLUSIVE',
  queueDepth: 64,
  commandTimeoutMs: 5000,
  overLimit: 'OVER_LIMIT_SLOW',
  requestTerminator: '\n',
  response: DEFAULT_RESPONSE,
  perConsumerQueue: perConsumerQueueFor(64),
  timeSliceMs: 100,
  weight: 1,
  roamingHoldMs: 10_000,
});

/** The longest a roaming binding's app may be held while its device moves (an hour). */
export const MAX_ROAMING_HOLD_MS = 3_600_000;
