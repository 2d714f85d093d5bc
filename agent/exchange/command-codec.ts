import type { DeviceMeshError } from '../../src/errors';
import type { ResponseRule } from './response-framer';

/** What one consumer may do, as a codec that checks per command sees it. */
export interface CommandAccess {
  readonly readOnly: boolean;
  /** Modbus unit ids the consumer may address; empty = any. */
  readonly units: readonly number[];
}

/** Cuts one consumer's byte stream into whole requests; throws a DeviceMeshError at bytes it cannot frame. */
export interface CommandSplitter {
  push(chunk: Buffer): Buffer[];
}

/** What becomes of a consumer's request: bytes for the device, or an answer given at once (a refusal in the protocol's words). */
export type PreparedCommand =
  | { readonly write: Buffer; readonly answer?: undefined; /** No response comes: hold the device this long after writing. */ readonly answerlessMs?: number }
  | { readonly answer: Buffer; readonly write?: undefined };

/**
 * The protocol between a consumer's requests and the device's bytes: how requests are cut from a
 * stream, what the device gets for one, how its response and its failures read to the consumer.
 */
export interface CommandCodec {
  /** How the device's responses are framed. */
  readonly rule: ResponseRule;
  /** True when the codec checks read-only per request (so a read-only session's bytes reach it). */
  readonly checksAccess: boolean;
  splitter(): CommandSplitter;
  prepare(request: Buffer, access: CommandAccess): PreparedCommand;
  /** The device's response as the consumer gets it (empty: nothing to send, as for a Modbus broadcast). */
  answered(request: Buffer, response: Buffer, seconds: number): Buffer;
  /** A request that failed: the consumer's answer in the protocol's words (empty: nothing to send), or undefined for the usual handling. */
  failed(request: Buffer, err: DeviceMeshError, seconds: number): Buffer | undefined;
  /** Device output no command asked for: true when the codec dropped (and counted) it. */
  dropsUnsolicited(chunk: Buffer): boolean;
  /** Device output arrived (bus timing). */
  heard(): void;
  /** Writes a request's bytes to the device. */
  write(bytes: Buffer): void;
}
