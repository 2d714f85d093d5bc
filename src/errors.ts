/**
 * The error classes of devicemesh. Every failure that crosses a module boundary is one of these,
 * with a stable code that scripts and tests match on and a message a person can act on.
 */

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_DOCUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'UNAVAILABLE'
  | 'PROTOCOL_ERROR'
  | 'DEVICE_ERROR'
  | 'RESOURCE_EXHAUSTED'
  | 'DEADLINE_EXCEEDED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL';

export class DeviceMeshError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A flag, a document or an API argument that is not acceptable. */
export class ValidationError extends DeviceMeshError {
  /** Where the problem is, e.g. `binding/app1-modem: serial.baudRate`. */
  readonly field: string;

  constructor(field: string, reason: string) {
    super('INVALID_DOCUMENT', field ? `${field}: ${reason}` : reason);
    this.field = field;
  }
}

export class NotFoundError extends DeviceMeshError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/** A peer sent bytes that do not follow the protocol (socket plane, discovery, RFC 2217). */
export class ProtocolError extends DeviceMeshError {
  constructor(message: string) {
    super('PROTOCOL_ERROR', message);
  }
}

export class PermissionDeniedError extends DeviceMeshError {
  constructor(message: string) {
    super('PERMISSION_DENIED', message);
  }
}

/** The peer could not prove who it is: no certificate, another CA's, an expired one, a bad token. */
export class UnauthenticatedError extends DeviceMeshError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

export class DeviceError extends DeviceMeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DEVICE_ERROR', message, options);
  }
}

export class UnavailableError extends DeviceMeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

/** What was asked for is taken: a host whose address another live agent holds. */
export class AlreadyExistsError extends DeviceMeshError {
  constructor(message: string) {
    super('ALREADY_EXISTS', message);
  }
}

/** A limit was reached: a queue, a session count, commands in flight. */
export class ResourceExhaustedError extends DeviceMeshError {
  constructor(message: string) {
    super('RESOURCE_EXHAUSTED', message);
  }
}

/** A device did not answer a command within its timeout. */
export class TimeoutError extends DeviceMeshError {
  constructor(message: string) {
    super('DEADLINE_EXCEEDED', message);
  }
}

/** The device or its driver does not do what was asked (a GPIO command to a serial port, say). */
export class UnsupportedError extends DeviceMeshError {
  constructor(message: string) {
    super('UNIMPLEMENTED', message);
  }
}

/**
 * The code of anything thrown: a devicemesh error's own, anything else `fallback` (what a foreign
 * failure means where it was caught: a device failing, a peer gone, a bug of ours).
 */
export function errorCode(err: unknown, fallback: ErrorCode): ErrorCode {
  return err instanceof DeviceMeshError ? err.code : fallback;
}

/** The message of anything thrown, for logs and one-line CLI errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
