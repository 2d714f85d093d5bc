import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { applyPatch, type Operation } from 'fast-json-patch';
import { reviewAdmission, type WebhookReply } from '../../../../control-plane/injection/injection-webhook';
import type { InjectionConfig } from '../../../../control-plane/injection/sidecar-patch';
import { REPO_ROOT } from '../../../helpers/processes';

const CONFIG: InjectionConfig = {
  image: 'registry.example.com/devicemesh:0.1.0',
  controlPlane: 'devicemesh-control-plane.devicemesh-system.svc:15010',
  caConfigMap: 'devicemesh-ca',
};

function fixture(name: string): string {
  return fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'admission', name), 'utf8');
}

interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Pod {
  metadata: { annotations?: Record<string, string> };
  spec: { containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
}

/** The pod after the webhook's patch, applied by an independent JSON Patch implementation. */
function patched(reviewText: string, reply: WebhookReply): Pod {
  const pod = JSON.parse(reviewText).request.object as Pod;
  const ops = JSON.parse(Buffer.from(reply.review.response.patch as string, 'base64').toString('utf8')) as Operation[];
  // validateOperation=true: the library refuses operations that do not apply to this document.
  return applyPatch(pod, ops, true, false).newDocument;
}

describe('sidecar injection webhook (AdmissionReview v1)', () => {
  it('injects the sidecar into an annotated pod: args, env from the Secret, CA volume', () => {
    const text = fixture('pod-annotated.json');
    const reply = reviewAdmission(text, CONFIG);
    assert.equal(reply.httpStatus, 200);
    assert.equal(reply.outcome, 'injected');
    const { response } = reply.review;
    assert.equal(reply.review.apiVersion, 'admission.k8s.io/v1');
    assert.equal(reply.review.kind, 'AdmissionReview');
    assert.equal(response.uid, '0df28fbd-5f5f-11e8-bc74-36e6bb280816');
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, 'JSONPatch');

    const pod = patched(text, reply);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['reader', 'devicemesh-sidecar']);
    const sidecar = pod.spec.containers[1] as Container;
    assert.equal(sidecar.image, CONFIG.image);
    // The workload id comes from the pod's app label (a ReplicaSet's pod has no name yet).
    assert.deepEqual(sidecar.args, ['sidecar', '--workload-id', 'modem-reader', '--control-plane', CONFIG.controlPlane, '--admin', '0.0.0.0:15001']);
    assert.deepEqual(sidecar.env, [
      { name: 'DEVICEMESH_TOKEN', valueFrom: { secretKeyRef: { name: 'devicemesh-token-modem-reader', key: 'token' } } },
      { name: 'DEVICEMESH_CA_FILE', value: '/etc/devicemesh/ca/ca.crt' },
    ]);
    assert.deepEqual(sidecar.volumeMounts, [{ name: 'devicemesh-ca', mountPath: '/etc/devicemesh/ca', readOnly: true }]);
    assert.deepEqual(pod.spec.volumes?.map((v) => v.name), ['kube-api-access-x7k2p', 'devicemesh-ca']);
    assert.deepEqual(pod.spec.volumes?.[1]?.configMap, { name: 'devicemesh-ca' });
    assert.equal(pod.metadata.annotations?.['devicemesh.io/inject'], 'true');
    assert.match(pod.metadata.annotations?.['devicemesh.io/status'] ?? '', /devicemesh-sidecar/);
    // The app container is as it was.
    assert.deepEqual(pod.spec.containers[0], JSON.parse(text).request.object.spec.containers[0]);
  });

  it('creates the volumes list and takes the workload id and Secret from annotations', () => {
    const text = fixture('pod-annotated-no-volumes.json');
    const reply = reviewAdmission(text, CONFIG);
    assert.equal(reply.outcome, 'injected');
    const pod = patched(text, reply);
    const sidecar = pod.spec.containers.find((c) => c.name === 'devicemesh-sidecar') as Container;
    assert.equal(sidecar.args?.[2], 'gps-logger');
    assert.deepEqual(sidecar.env?.[0]?.valueFrom, { secretKeyRef: { name: 'gps-bootstrap', key: 'token' } });
    assert.deepEqual(pod.spec.volumes, [{ name: 'devicemesh-ca', configMap: { name: 'devicemesh-ca' } }]);
  });

  it('leaves a pod that is not annotated untouched', () => {
    const reply = reviewAdmission(fixture('pod-not-annotated.json'), CONFIG);
    assert.equal(reply.outcome, 'skipped');
    assert.deepEqual(reply.review.response, { uid: '7c1f43a1-3a2e-4c8e-9f3b-2a1d5e6f7a80', allowed: true });
  });

  it('leaves a pod annotated "false" untouched', () => {
    const review = JSON.parse(fixture('pod-annotated.json'));
    review.request.object.metadata.annotations['devicemesh.io/inject'] = 'false';
    const reply = reviewAdmission(JSON.stringify(review), CONFIG);
    assert.deepEqual(reply.review.response, { uid: review.request.uid, allowed: true });
  });

  it('leaves an already injected pod untouched, by annotation or by container', () => {
    const reply = reviewAdmission(fixture('pod-already-injected.json'), CONFIG);
    assert.equal(reply.outcome, 'skipped');
    assert.equal(reply.detail, 'already injected');
    assert.deepEqual(reply.review.response, { uid: '3e8d2b17-6c4a-4f0e-8a9b-5d7c1e2f3a4b', allowed: true });
    const review = JSON.parse(fixture('pod-already-injected.json'));
    delete review.request.object.metadata.annotations['devicemesh.io/status'];
    assert.equal(reviewAdmission(JSON.stringify(review), CONFIG).detail, 'already injected');
  });

  it('injecting twice is the same as once: the patched pod passes untouched', () => {
    const text = fixture('pod-annotated.json');
    const pod = patched(text, reviewAdmission(text, CONFIG));
    const again = JSON.parse(text);
    again.request.object = pod;
    assert.equal(reviewAdmission(JSON.stringify(again), CONFIG).outcome, 'skipped');
  });

  it('lets other kinds and operations through untouched, with a warning', () => {
    const reply = reviewAdmission(fixture('deployment.json'), CONFIG);
    assert.equal(reply.review.response.allowed, true);
    assert.equal(reply.review.response.patch, undefined);
    assert.match(reply.review.response.warnings?.[0] ?? '', /not a pod creation \(CREATE apps\/v1 Deployment\)/);
    const update = JSON.parse(fixture('pod-annotated.json'));
    update.request.operation = 'UPDATE';
    assert.equal(reviewAdmission(JSON.stringify(update), CONFIG).review.response.patch, undefined);
  });

  it('refuses an annotated pod whose workload id is not a valid name, saying why', () => {
    const review = JSON.parse(fixture('pod-annotated.json'));
    review.request.object.metadata.labels.app = 'Modem_Reader!';
    const reply = reviewAdmission(JSON.stringify(review), CONFIG);
    assert.equal(reply.outcome, 'refused');
    assert.equal(reply.review.response.allowed, false);
    assert.equal(reply.review.response.uid, review.request.uid);
    assert.match(reply.review.response.status?.message ?? '', /pod label app: "Modem_Reader!" is not a valid workload id/);
  });

  const malformed: [string, string, RegExp, number][] = [
    ['text that is not JSON', '{"kind": "AdmissionReview", ', /the body is not JSON/, 400],
    ['a JSON list', '[1, 2]', /not a JSON object/, 400],
    ['an AdmissionReview v1beta1', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'u1' } }), /expected apiVersion admission\.k8s\.io\/v1/, 200],
    ['a review without a request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /has no request/, 400],
    ['a request without a uid', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: {} } }), /request\.uid is missing/, 400],
    [
      'a request without an object',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u2', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' } }),
      /request\.object is missing/,
      200,
    ],
  ];
  for (const [what, body, pattern, httpStatus] of malformed) {
    it(`answers ${what} with a clear error response`, () => {
      const reply = reviewAdmission(body, CONFIG);
      assert.equal(reply.outcome, 'malformed');
      assert.equal(reply.httpStatus, httpStatus);
      assert.equal(reply.review.response.allowed, false);
      assert.equal(reply.review.response.status?.code, 400);
      assert.match(reply.review.response.status?.message ?? '', pattern);
    });
  }

  it('an annotated pod without containers is refused, not a crash', () => {
    const review = JSON.parse(fixture('pod-annotated.json'));
    delete review.request.object.spec.containers;
    const reply = reviewAdmission(JSON.stringify(review), CONFIG);
    assert.equal(reply.outcome, 'refused');
    assert.match(reply.review.response.status?.message ?? '', /spec\.containers is missing/);
  });

  it('answers any body with a review, never an exception (property)', () => {
    const base = JSON.parse(fixture('pod-annotated.json'));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.anything().map((x) => JSON.stringify({ ...base, request: { ...base.request, object: x } }) ?? '')), (body) => {
        const reply = reviewAdmission(body, CONFIG);
        assert.equal(reply.review.kind, 'AdmissionReview');
        assert.equal(typeof reply.review.response.allowed, 'boolean');
      }),
    );
  });
});
