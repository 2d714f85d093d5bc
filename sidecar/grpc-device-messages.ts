import { DeviceMeshError, errorCode, errorMessage } from '../src/errors';
import type { DeviceKind, Mapping, Timestamp } from '../src/proto/types';
import { CommandOp, type CommandReply, type DeviceCommand } from '../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../src/socket-plane/device-event';

/*
 * devicemesh.v1.DeviceSession messages (proto/devicemesh/v1/device.proto) as proto-loader
 * decodes and encodes them with OBJECT_OPTIONS, and their conversion to and from the socket plane.
 */

export interface DeviceCommandMessage {
  requestId: number;
  /** The CommandOp name; a number when the app sent a value this proto does not know. */
  op: string | number;
  target: string;
  value: number;
  data: Buffer;
}

/** `request` names the member of the oneof that is set; absent when none is. */
export type DeviceRequestMessage =
  | { request: 'data'; data: Buffer }
  | { request: 'command'; command: DeviceCommandMessage }
  | { request: 'endOfInput' }
  | { request?: undefined };

export interface CommandResultMessage {
  requestId: number;
  ok: boolean;
  value: number;
  data: Buffer;
  error: { code: string; message: string } | null;
}

export interface DeviceEventMessage {
  type: string;
  timestamp: Timestamp;
  source: string;
  value: number;
  data: Buffer;
}

export type DeviceResponseMessage =
  | { opened: { mappingId: string; device: string; kind: DeviceKind } }
  | { data: Buffer }
  | { commandResult: CommandResultMessage }
  | { event: DeviceEventMessage };

/** The socket plane carries a command's target with a one-byte length. */
const MAX_TARGET_BYTES = 255;
const EMPTY = Buffer.alloc(0);

/** `SerialSetLine` → `SERIAL_SET_LINE`: the proto enums mirror the TypeScript ones name for name. */
function screamingCase(name: string): string {
  return name.replace(/(?<=[a-z0-9])(?=[A-Z])/g, '_').toUpperCase();
}

/** Proto enum value name → TypeScript enum value, e.g. `COMMAND_OP_GPIO_SET` → 21. */
function protoNames(tsEnum: Record<string, string | number>, prefix: string): Map<string, number> {
  const names = new Map<string, number>();
  for (const [name, value] of Object.entries(tsEnum)) {
    if (typeof value === 'number') names.set(`${prefix}_${screamingCase(name)}`, value);
  }
  return names;
}

export const COMMAND_OPS: ReadonlyMap<string, CommandOp> = protoNames(CommandOp, 'COMMAND_OP');
export const EVENT_TYPES: ReadonlyMap<string, DeviceEventType> = protoNames(DeviceEventType, 'DEVICE_EVENT_TYPE');
const EVENT_TYPE_NAMES = new Map<number, string>([...EVENT_TYPES].map(([name, type]) => [type, name]));

function invalid(message: string): DeviceMeshError {
  return new DeviceMeshError('INVALID_ARGUMENT', message);
}

/** The socket-plane command an app asked for; throws an INVALID_ARGUMENT DeviceMeshError saying what is wrong. */
export function toDeviceCommand(message: DeviceCommandMessage): DeviceCommand {
  const op = typeof message.op === 'string' ? COMMAND_OPS.get(message.op) : undefined;
  if (op === undefined) throw invalid(`command ${message.requestId}: op ${message.op} is not a device operation`);
  if (Buffer.byteLength(message.target, 'utf8') > MAX_TARGET_BYTES) {
    throw invalid(`command ${message.requestId}: target is longer than ${MAX_TARGET_BYTES} bytes`);
  }
  return { op, target: message.target, value: message.value, data: message.data };
}

export function openedResponse(mapping: Mapping): DeviceResponseMessage {
  return { opened: { mappingId: mapping.id, device: mapping.physicalId, kind: mapping.kind } };
}

export function commandReplyResponse(requestId: number, reply: CommandReply): DeviceResponseMessage {
  return { commandResult: { requestId, ok: true, value: reply.value, data: reply.data, error: null } };
}

/** A failed command, as its result: the app's stream goes on. */
export function commandErrorResponse(requestId: number, err: unknown): DeviceResponseMessage {
  const code = errorCode(err, 'INTERNAL');
  return { commandResult: { requestId, ok: false, value: 0, data: EMPTY, error: { code, message: errorMessage(err) } } };
}

export function eventResponse(event: DeviceEvent): DeviceResponseMessage {
  const type = EVENT_TYPE_NAMES.get(event.type) ?? 'DEVICE_EVENT_TYPE_UNSPECIFIED';
  return { event: { type, timestamp: protoTimestamp(event.timestampMs), source: event.source, value: event.value, data: event.data } };
}

/** Epoch milliseconds with a fraction as google.protobuf.Timestamp, rounded to the microsecond the agent's clock gives. */
export function protoTimestamp(epochMs: number): Timestamp {
  const micros = Math.round(epochMs * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  return { seconds: String(seconds), nanos: (micros - seconds * 1_000_000) * 1000 };
}
