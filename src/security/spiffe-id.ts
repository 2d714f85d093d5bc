import type { X509Certificate } from 'node:crypto';
import { UnauthenticatedError, ValidationError } from '../errors';

/** What a mesh identity names: a gateway host, a workload, the control plane, or a human operator. */
export type IdentityKind = 'host' | 'workload' | 'control-plane' | 'operator';

/**
 * A SPIFFE ID as devicemesh uses them: `spiffe://<trust-domain>/host/<id>`,
 * `spiffe://<trust-domain>/workload/<id>`, `spiffe://<trust-domain>/operator/<id>`, and the
 * control plane's own `spiffe://<trust-domain>/control-plane` (its `id` is '').
 */
export interface SpiffeId {
  trustDomain: string;
  kind: IdentityKind;
  id: string;
}

export const DEFAULT_TRUST_DOMAIN = 'devicemesh.local';

/** SPIFFE: trust domain of lower-case letters, digits, '.', '-', '_'. */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
/** Host and workload ids as the rest of devicemesh allows them (no '/', no spaces). */
const ID = /^[A-Za-z0-9._~-]{1,128}$/;
const KINDS_WITH_ID: ReadonlySet<IdentityKind> = new Set(['host', 'workload', 'operator']);

export function formatSpiffeId(s: SpiffeId): string {
  return s.kind === 'control-plane' ? `spiffe://${s.trustDomain}/control-plane` : `spiffe://${s.trustDomain}/${s.kind}/${s.id}`;
}

export function checkTrustDomain(trustDomain: string, field = 'trust domain'): string {
  if (!TRUST_DOMAIN.test(trustDomain)) throw new ValidationError(field, `"${trustDomain}" is not a trust domain (a-z, 0-9, '.', '-', '_')`);
  return trustDomain;
}

export function checkIdentityId(id: string, field: string): string {
  if (!ID.test(id)) throw new ValidationError(field, `"${id}" is not a valid id (1–128 of A-Z a-z 0-9 . _ ~ -)`);
  return id;
}

/** Parses a SPIFFE ID of one of devicemesh's forms; anything else is a ValidationError. */
export function parseSpiffeId(uri: string): SpiffeId {
  const m = /^spiffe:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new ValidationError('spiffe id', `"${uri}" is not a spiffe://<trust-domain>/<path> URI`);
  const trustDomain = checkTrustDomain(m[1] as string, 'spiffe id');
  const parts = (m[2] as string).split('/');
  if (parts.length === 1 && parts[0] === 'control-plane') return { trustDomain, kind: 'control-plane', id: '' };
  const [kind, id] = parts;
  if (parts.length !== 2 || !KINDS_WITH_ID.has(kind as IdentityKind)) {
    throw new ValidationError('spiffe id', `"${uri}" names neither host/<id>, workload/<id>, operator/<id> nor control-plane`);
  }
  return { trustDomain, kind: kind as IdentityKind, id: checkIdentityId(id as string, 'spiffe id') };
}

/**
 * The one SPIFFE ID in a certificate's URI SANs. A certificate with none, with several, or with
 * one devicemesh does not understand proves no identity: UnauthenticatedError.
 */
export function spiffeIdOfCertificate(cert: X509Certificate): SpiffeId {
  const uris = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4))
    .filter((uri) => uri.startsWith('spiffe://'));
  if (uris.length !== 1) throw new UnauthenticatedError(`certificate ${cert.subject.replace(/\n/g, ', ')} carries ${uris.length} SPIFFE IDs, not one`);
  try {
    return parseSpiffeId(uris[0] as string);
  } catch (err) {
    throw new UnauthenticatedError(`certificate's SPIFFE ID is not one of devicemesh's: ${(err as Error).message}`);
  }
}

export function sameIdentity(a: SpiffeId, b: SpiffeId): boolean {
  return a.trustDomain === b.trustDomain && a.kind === b.kind && a.id === b.id;
}

/** `host/ID` or `workload/ID`, as the operator names a member (`devicemesh identity revoke`). */
export function parseIdentityArgument(text: string): { kind: 'host' | 'workload'; id: string } {
  const m = /^(host|workload)\/(.*)$/.exec(typeof text === 'string' ? text : '');
  if (!m) throw new ValidationError('identity', `${JSON.stringify(text)} is neither host/<id> nor workload/<id>`);
  return { kind: m[1] as 'host' | 'workload', id: checkIdentityId(m[2] as string, 'identity') };
}
