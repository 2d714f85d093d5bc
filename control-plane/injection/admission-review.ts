import { ValidationError } from '../../src/errors';

/** The parts of an AdmissionReview v1 request the injector reads. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: string;
  namespace: string;
  name: string;
  object: Record<string, unknown>;
}

export interface JsonPatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** An AdmissionReview v1 response, as the API server expects it back. */
export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string };
    patchType?: 'JSONPatch';
    /** The JSON Patch, base64. */
    patch?: string;
    warnings?: string[];
  };
}

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/**
 * Reads an AdmissionReview v1 request from its JSON text. Anything else (not JSON, another
 * version, no request, no uid, no object) is a ValidationError saying what is wrong; the uid is
 * kept on the error where it could be read, so the refusal can still answer that request.
 */
export function readAdmissionReview(text: string): AdmissionRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new AdmissionReviewError('', `the body is not JSON: ${(err as Error).message}`);
  }
  const review = record(parsed);
  if (!review) throw new AdmissionReviewError('', 'the body is not a JSON object');
  const request = record(review.request);
  const uid = request && typeof request.uid === 'string' ? request.uid : '';
  if (review.apiVersion !== ADMISSION_API_VERSION || review.kind !== 'AdmissionReview') {
    throw new AdmissionReviewError(uid, `expected apiVersion ${ADMISSION_API_VERSION}, kind AdmissionReview; got ${String(review.apiVersion)}, ${String(review.kind)}`);
  }
  if (!request) throw new AdmissionReviewError(uid, 'the review has no request');
  if (uid === '') throw new AdmissionReviewError(uid, 'request.uid is missing');
  const kind = record(request.kind);
  if (!kind || typeof kind.kind !== 'string' || typeof kind.version !== 'string') {
    throw new AdmissionReviewError(uid, 'request.kind is missing or not a group/version/kind');
  }
  if (typeof request.operation !== 'string') throw new AdmissionReviewError(uid, 'request.operation is missing');
  const object = record(request.object);
  if (!object) throw new AdmissionReviewError(uid, 'request.object is missing or not an object');
  return {
    uid,
    kind: { group: typeof kind.group === 'string' ? kind.group : '', version: kind.version, kind: kind.kind },
    operation: request.operation,
    namespace: typeof request.namespace === 'string' ? request.namespace : '',
    name: typeof request.name === 'string' ? request.name : '',
    object,
  };
}

/** A review that cannot be acted on; `uid` is the request's where it could be read, else ''. */
export class AdmissionReviewError extends ValidationError {
  constructor(
    readonly uid: string,
    reason: string,
  ) {
    super('admission review', reason);
  }
}

export function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
