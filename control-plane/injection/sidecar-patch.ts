import { ValidationError } from '../../src/errors';
import { type JsonPatchOperation, record } from './admission-review';

/** What an injected sidecar is made of; the control plane's --inject-* flags. */
export interface InjectionConfig {
  /** The devicemesh image the sidecar runs (its entrypoint is the devicemesh binary). */
  image: string;
  /** The control-plane address(es) sidecars dial, as they are reachable from pods. */
  controlPlane: string;
  /** The ConfigMap holding the mesh CA certificate (key ca.crt), mounted read-only. */
  caConfigMap: string;
}

export const INJECT_ANNOTATION = 'devicemesh.io/inject';
export const STATUS_ANNOTATION = 'devicemesh.io/status';
export const WORKLOAD_ANNOTATION = 'devicemesh.io/workload-id';
export const TOKEN_SECRET_ANNOTATION = 'devicemesh.io/token-secret';
export const SIDECAR_NAME = 'devicemesh-sidecar';
export const CA_VOLUME = 'devicemesh-ca';
export const CA_MOUNT = '/etc/devicemesh/ca';
export const SIDECAR_ADMIN_PORT = 15001;

const WORKLOAD_ID = /^[a-z0-9]([-a-z0-9._]{0,61}[a-z0-9])?$/;

/** Why a pod is left as it is, or the patch that adds the sidecar. */
export type InjectionDecision = { inject: false; reason: string } | { inject: true; workloadId: string; patch: JsonPatchOperation[] };

/**
 * Decides for one pod, as Istio's injector does: only pods annotated `devicemesh.io/inject: "true"`
 * that do not carry a sidecar yet get one. The workload id is the pod's devicemesh.io/workload-id
 * annotation, else its app.kubernetes.io/name or app label, else its name (or generateName without
 * the trailing dash); the bootstrap token comes from the Secret devicemesh-token-<workload id>
 * (or the one the devicemesh.io/token-secret annotation names), key `token`.
 */
export function sidecarPatch(pod: Record<string, unknown>, config: InjectionConfig): InjectionDecision {
  const metadata = record(pod.metadata) ?? {};
  const annotations = stringMap(metadata.annotations);
  const labels = stringMap(metadata.labels);
  const spec = record(pod.spec);
  if (annotations[INJECT_ANNOTATION] !== 'true') return { inject: false, reason: `not annotated ${INJECT_ANNOTATION}: "true"` };
  if (!spec || !Array.isArray(spec.containers)) throw new ValidationError('pod', 'spec.containers is missing');
  const containers = spec.containers.map((c) => record(c)?.name);
  if (annotations[STATUS_ANNOTATION] !== undefined || containers.includes(SIDECAR_NAME)) return { inject: false, reason: 'already injected' };

  const workloadId = workloadIdOf(metadata, annotations, labels);
  const tokenSecret = annotations[TOKEN_SECRET_ANNOTATION] ?? `devicemesh-token-${workloadId}`;
  const sidecar = {
    name: SIDECAR_NAME,
    image: config.image,
    args: ['sidecar', '--workload-id', workloadId, '--control-plane', config.controlPlane, '--admin', `0.0.0.0:${SIDECAR_ADMIN_PORT}`],
    env: [
      { name: 'DEVICEMESH_TOKEN', valueFrom: { secretKeyRef: { name: tokenSecret, key: 'token' } } },
      { name: 'DEVICEMESH_CA_FILE', value: `${CA_MOUNT}/ca.crt` },
    ],
    ports: [{ name: 'devicemesh-admin', containerPort: SIDECAR_ADMIN_PORT }],
    readinessProbe: { httpGet: { path: '/ready', port: SIDECAR_ADMIN_PORT }, periodSeconds: 2 },
    volumeMounts: [{ name: CA_VOLUME, mountPath: CA_MOUNT, readOnly: true }],
    securityContext: { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
  };
  const volume = { name: CA_VOLUME, configMap: { name: config.caConfigMap } };
  const status = JSON.stringify({ containers: [SIDECAR_NAME], volumes: [CA_VOLUME] });

  // The annotations map exists: the inject annotation is in it.
  const patch: JsonPatchOperation[] = [
    { op: 'add', path: `/metadata/annotations/${pointerToken(STATUS_ANNOTATION)}`, value: status },
    { op: 'add', path: '/spec/containers/-', value: sidecar },
  ];
  if (!Array.isArray(spec.volumes)) patch.push({ op: 'add', path: '/spec/volumes', value: [volume] });
  else if (!spec.volumes.some((v) => record(v)?.name === CA_VOLUME)) patch.push({ op: 'add', path: '/spec/volumes/-', value: volume });
  return { inject: true, workloadId, patch };
}

function workloadIdOf(metadata: Record<string, unknown>, annotations: Record<string, string>, labels: Record<string, string>): string {
  const generated = typeof metadata.generateName === 'string' ? metadata.generateName.replace(/-+$/, '') : '';
  const candidates: [string, string | undefined][] = [
    [`annotation ${WORKLOAD_ANNOTATION}`, annotations[WORKLOAD_ANNOTATION]],
    ['label app.kubernetes.io/name', labels['app.kubernetes.io/name']],
    ['label app', labels.app],
    ['metadata.name', typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : undefined],
    ['metadata.generateName', generated !== '' ? generated : undefined],
  ];
  for (const [source, value] of candidates) {
    if (value === undefined) continue;
    if (!WORKLOAD_ID.test(value)) {
      throw new ValidationError(`pod ${source}`, `"${value}" is not a valid workload id (lower-case letters, digits, '-', '.', '_'; at most 63 characters)`);
    }
    return value;
  }
  throw new ValidationError('pod', `has no workload id: set the ${WORKLOAD_ANNOTATION} annotation or an app label`);
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(value) ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

/** RFC 6901: `~` and `/` inside one path segment. */
function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
