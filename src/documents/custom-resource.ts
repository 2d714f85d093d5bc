import { ValidationError } from '../errors';

export const CUSTOM_RESOURCE_GROUP = 'devicemesh.io';
/** Custom resource kind → the document kind with the same fields. */
const DOCUMENT_KIND: Readonly<Record<string, string>> = { Binding: 'Binding', DevicePolicy: 'Policy' };

/**
 * The document a Kubernetes custom resource stands for: `metadata.name` becomes `name`, the
 * fields of `spec` become the document's own (the CRDs in deploy/kubernetes/crds.yaml describe the
 * same fields), so one parser reads both.
 */
export function documentFromCustomResource(resource: unknown, where: string): Record<string, unknown> {
  const r = mapping(resource, where);
  const apiVersion = String(r.apiVersion ?? '');
  if (apiVersion.split('/')[0] !== CUSTOM_RESOURCE_GROUP) {
    throw new ValidationError(`${where}: apiVersion`, `"${apiVersion}" is not in the ${CUSTOM_RESOURCE_GROUP} group`);
  }
  const kind = Object.hasOwn(DOCUMENT_KIND, String(r.kind)) ? DOCUMENT_KIND[String(r.kind)] : undefined;
  if (!kind) throw new ValidationError(`${where}: kind`, `"${String(r.kind)}" is not one of ${Object.keys(DOCUMENT_KIND).join(', ')}`);
  const metadata = mapping(r.metadata, `${where}: metadata`);
  const spec = mapping(r.spec, `${where}: spec`);
  // The resource's kind and name are its identity; a spec repeating them would silently override them.
  for (const key of ['kind', 'name', 'apiVersion']) {
    if (Object.hasOwn(spec, key)) throw new ValidationError(`${where}: spec.${key}`, `is not a field of a ${String(r.kind)} spec (the resource's ${key === 'name' ? 'metadata.name' : key} says it)`);
  }
  return { ...spec, kind, name: metadata.name };
}

/** A Kubernetes-style object (metadata and spec) rather than a flat document. */
export function isCustomResource(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'metadata' in value && 'spec' in value;
}

function mapping(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ValidationError(where, 'must be a mapping of fields');
  return value as Record<string, unknown>;
}
