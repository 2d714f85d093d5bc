import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, errorMessage, type ErrorCode } from '../errors';
import type { Logger } from '../log';

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

/** A devicemesh error as a gRPC status whose details are the error's message. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const code = err instanceof DeviceMeshError ? GRPC_CODES[err.code] : grpc.status.INTERNAL;
  const details = errorMessage(err);
  return Object.assign(new Error(details), { code, details });
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
