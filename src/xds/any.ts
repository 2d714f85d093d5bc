import { ProtocolError } from '../errors';
import { messageType, OBJECT_OPTIONS } from '../proto/load';
import type { XdsAny } from '../proto/types';
import { messageNameOf, type ResourceTypes } from './type-urls';

/** Packs a message object into a `google.protobuf.Any` of the given type URL. */
export function packAny(typeUrl: string, message: object): XdsAny {
  const type = messageType(messageNameOf(typeUrl));
  const value = Buffer.from(type.encode(type.fromObject(message)).finish());
  return { type_url: typeUrl, value };
}

/**
 * Unpacks an Any, checking its type URL; a payload that does not decode is a ProtocolError. A
 * resource type devicemesh declares comes back as its message type; any other as unknown.
 */
export function unpackAny<U extends keyof ResourceTypes>(any: XdsAny, expectedTypeUrl: U): ResourceTypes[U];
export function unpackAny(any: XdsAny, expectedTypeUrl: string): unknown;
export function unpackAny(any: XdsAny, expectedTypeUrl: string): unknown {
  if (any.type_url !== expectedTypeUrl) {
    throw new ProtocolError(`resource has type ${any.type_url || '(none)'}, expected ${expectedTypeUrl}`);
  }
  const type = messageType(messageNameOf(expectedTypeUrl));
  try {
    return type.toObject(type.decode(any.value), OBJECT_OPTIONS);
  } catch (err) {
    throw new ProtocolError(`resource of type ${expectedTypeUrl} does not decode: ${(err as Error).message}`);
  }
}
