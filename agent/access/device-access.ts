import { type DeviceMeshError, PermissionDeniedError } from '../../src/errors';
import type { Mapping, SharingMode } from '../../src/proto/types';
import type { Counter } from '../../src/telemetry/stats';
import type { ExchangeConsumer } from '../exchange/device-exchange';
import type { LimitGate } from '../limits/limit-gate';
import type { FrameConsumer } from './frame-fanout';

export type WriteCallback = (err?: Error | null) => void;

/** A session on the device as the access strategies see it. */
export interface AccessMember extends Omit<ExchangeConsumer, 'receive' | 'refuse'>, FrameConsumer {
  readonly mappingId: string;
  readonly readOnly: boolean;
  /** Its binding's limits and the device's capacity: every byte it sends to the device passes here. */
  readonly gate: LimitGate;
  /** Bytes it sent that the device took, or the exchange took as commands. */
  readonly bytesToDevice: Counter;
  /** Writes refused because its mapping is read-only. */
  readonly writesRefused: Counter;
  /** Ends the session with `err` (the client sees it as a RESET). */
  refuse(err: DeviceMeshError): void;
}

/** What an access strategy needs of the open device: the next stage down. */
export interface DeviceSink {
  readonly path: string;
  /** Stream bytes of `member`; the callback waits for the device's 'drain' when it is full. */
  write(member: AccessMember, chunk: Buffer, callback: WriteCallback): void;
  /** A request of the exchange, written as it is (the exchange's queue paces requests itself). */
  writeRequest(request: Buffer): void;
  /** `member` cannot take more output: the device pauses until every held member reads again. */
  hold(member: AccessMember): void;
  /** Set while the device's stream is a framed capture: the stream header. */
  readonly frames: { readonly header: Buffer | undefined } | undefined;
}

/**
 * How one sharing mode lets sessions use the device: who may join, where a session's bytes go,
 * and to whom the device's output goes. The host keeps the members (in arrival order) and hands
 * the strategy its live list; a strategy lasts while the device is held under its mode.
 */
export interface DeviceAccess {
  readonly sharing: SharingMode;
  /** May a session of `mapping` join the members there are now? */
  admits(mapping: Mapping): boolean;
  join(member: AccessMember): void;
  leave(member: AccessMember): void;
  /** A member's bytes toward the device; the callback is the member's credit. */
  write(member: AccessMember, chunk: Buffer, callback: WriteCallback): void;
  /** Output the device produced. */
  fromDevice(chunk: Buffer): void;
  /** The device is gone or closing: whatever waits on it fails with `err`. */
  fail(err: DeviceMeshError): void;
  close(): void;
}

/** A mapping's sharing mode; unspecified is exclusive. */
export function sharingOf(mapping: Mapping): SharingMode {
  const sharing = mapping.policy?.sharing ?? 'SHARING_MODE_UNSPECIFIED';
  return sharing === 'SHARING_MODE_UNSPECIFIED' ? 'SHARING_MODE_EXCLUSIVE' : sharing;
}

/**
 * Whatever the sharing mode, a read-only binding's bytes never reach the device: the refusal
 * (counted) ends its session with the reason.
 */
export function readOnlyRefusal(member: AccessMember, device: DeviceSink): PermissionDeniedError {
  member.writesRefused.add(1);
  return new PermissionDeniedError(`mapping ${member.mappingId} is read-only: the app may not write to device ${device.path}`);
}
