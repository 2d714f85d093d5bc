import { errorMessage } from '../../src/errors';
import {
  ADMISSION_API_VERSION,
  type AdmissionRequest,
  type AdmissionReviewResponse,
  AdmissionReviewError,
  readAdmissionReview,
} from './admission-review';
import { type InjectionConfig, sidecarPatch } from './sidecar-patch';

/** What the webhook's HTTP layer sends back: a status and an AdmissionReview. */
export interface WebhookReply {
  httpStatus: number;
  review: AdmissionReviewResponse;
  /** For the log: what was decided and why. */
  outcome: 'injected' | 'skipped' | 'refused' | 'malformed';
  detail: string;
}

/**
 * The mutating webhook as a pure function: AdmissionReview v1 JSON in, an AdmissionReview
 * response out, with a base64 JSON Patch adding the sidecar to pods that ask for it. Pods that
 * do not ask, or already have it, and anything that is not a pod creation pass untouched; a pod
 * that asks but cannot be injected (no valid workload id) is refused with the reason, as is a
 * review that cannot be read (HTTP 400 where not even its uid could be read).
 */
export function reviewAdmission(body: string, config: InjectionConfig): WebhookReply {
  let request: AdmissionRequest;
  try {
    request = readAdmissionReview(body);
  } catch (err) {
    const uid = err instanceof AdmissionReviewError ? err.uid : '';
    const message = errorMessage(err);
    return { httpStatus: uid === '' ? 400 : 200, review: reply(uid, false, { status: { code: 400, message } }), outcome: 'malformed', detail: message };
  }
  const { uid, kind, operation } = request;
  if (kind.group !== '' || kind.kind !== 'Pod' || operation !== 'CREATE') {
    const detail = `not a pod creation (${operation} ${kind.group || 'core'}/${kind.version} ${kind.kind})`;
    return { httpStatus: 200, review: reply(uid, true, { warnings: [`devicemesh injector: ${detail}, left untouched`] }), outcome: 'skipped', detail };
  }
  try {
    const decision = sidecarPatch(request.object, config);
    if (!decision.inject) return { httpStatus: 200, review: reply(uid, true), outcome: 'skipped', detail: decision.reason };
    const patch = Buffer.from(JSON.stringify(decision.patch)).toString('base64');
    return {
      httpStatus: 200,
      review: reply(uid, true, { patchType: 'JSONPatch', patch }),
      outcome: 'injected',
      detail: `workload ${decision.workloadId}`,
    };
  } catch (err) {
    const message = `devicemesh sidecar injection: ${errorMessage(err)}`;
    return { httpStatus: 200, review: reply(uid, false, { status: { code: 400, message } }), outcome: 'refused', detail: message };
  }
}

function reply(uid: string, allowed: boolean, extra: Partial<AdmissionReviewResponse['response']> = {}): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid, allowed, ...extra } };
}
