import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, errorCode, errorMessage, type ErrorCode } from '../errors';
import type { Logger } from '../log';

/** The one table of devicemesh codes and gRPC statuses, both ways: every server and client of the mesh uses it. */
const GRPC_CODES: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  INVALID_DOCUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  PROTOCOL_ERROR: grpc.status.INVALID_ARGUMENT,
  DEVICE_ERROR: grpc.status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
  INTERNAL: grpc.status.INTERNAL,
};

/** A status's code the other way; a status no devicemesh code maps to is INTERNAL. */
const ERROR_CODES: Partial<Record<grpc.status, ErrorCode>> = {
  [grpc.status.INVALID_ARGUMENT]: 'INVALID_DOCUMENT',
  [grpc.status.NOT_FOUND]: 'NOT_FOUND',
  [grpc.status.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [grpc.status.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [grpc.status.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [grpc.status.UNAVAILABLE]: 'UNAVAILABLE',
  [grpc.status.FAILED_PRECONDITION]: 'DEVICE_ERROR',
  [grpc.status.RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED',
  [grpc.status.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [grpc.status.UNIMPLEMENTED]: 'UNIMPLEMENTED',
};

/** The gRPC status of anything thrown: a devicemesh error's by its code, anything else (a bug of ours) INTERNAL. */
export function grpcStatusOf(err: unknown): grpc.status {
  return GRPC_CODES[errorCode(err, 'INTERNAL')];
}

/** The devicemesh code of a gRPC status a client received. */
export function errorCodeOf(status: grpc.status): ErrorCode {
  return ERROR_CODES[status] ?? 'INTERNAL';
}

/** A devicemesh error as a gRPC status whose details are the error's message. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const details = errorMessage(err);
  return Object.assign(new Error(details), { code: grpcStatusOf(err), details });
}

/** A unary handler from an async function: its result is the response, its error the status. */
export function unary<Req, Res>(log: Logger, method: string, fn: (request: Req) => Promise<Res> | Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (response) => callback(null, response),
        (err: unknown) => {
          // Anything not a DeviceMeshError is a bug of ours, not the caller's: worth an error line.
          if (err instanceof DeviceMeshError) log.info({ method, error: errorMessage(err) }, 'request refused');
          else log.error({ method, error: errorMessage(err) }, 'request failed');
          callback(toServiceError(err));
        },
      );
  };
}
