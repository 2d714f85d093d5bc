import { type ErrorCode, ProtocolError } from '../errors';

/** OPEN: which mapping the sidecar wants, on behalf of which workload. */
export interface OpenRequest {
  mappingId: string;
  workloadId: string;
  /** W3C trace context of the sidecar's span for this session: the agent's spans continue its trace. */
  traceparent?: string;
}

/** RESET and GOAWAY: why a session or connection ends. */
export interface ErrorPayload {
  code: ErrorCode;
  message: string;
}

const MAX_ID = 256;
/** W3C traceparent: version-traceid-parentid-flags, lowercase hex. */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

function parseObject(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ProtocolError(`${what} payload is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} payload is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function stringField(obj: Record<string, unknown>, what: string, field: string, max: number): string {
  const v = obj[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw new ProtocolError(`${what}.${field} must be a non-empty string of at most ${max} characters`);
  }
  return v;
}

export function encodeOpen(req: OpenRequest): Buffer {
  const traced = req.traceparent === undefined ? {} : { traceparent: req.traceparent };
  return Buffer.from(JSON.stringify({ mappingId: req.mappingId, workloadId: req.workloadId, ...traced }));
}

/** An OPEN without `traceparent` (an older sidecar) is accepted; a malformed one is a protocol error. */
export function decodeOpen(payload: Buffer): OpenRequest {
  const obj = parseObject(payload, 'OPEN');
  const request: OpenRequest = {
    mappingId: stringField(obj, 'OPEN', 'mappingId', MAX_ID),
    workloadId: stringField(obj, 'OPEN', 'workloadId', MAX_ID),
  };
  if (obj.traceparent !== undefined) {
    if (typeof obj.traceparent !== 'string' || !TRACEPARENT.test(obj.traceparent)) {
      throw new ProtocolError('OPEN.traceparent must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)');
    }
    request.traceparent = obj.traceparent;
  }
  return request;
}

export function encodeError(err: ErrorPayload): Buffer {
  return Buffer.from(JSON.stringify({ code: err.code, message: err.message }));
}

/** Lenient on purpose: an error from the peer is reported even when it is oddly shaped. */
export function decodeError(payload: Buffer): ErrorPayload {
  try {
    const obj = parseObject(payload, 'RESET');
    const code = typeof obj.code === 'string' ? (obj.code as ErrorCode) : 'PROTOCOL_ERROR';
    const message = typeof obj.message === 'string' ? obj.message : 'no reason given';
    return { code, message };
  } catch {
    return { code: 'PROTOCOL_ERROR', message: `unreadable error payload (${payload.length} bytes)` };
  }
}
