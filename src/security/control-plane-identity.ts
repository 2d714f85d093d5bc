import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import { UnauthenticatedError } from '../errors';
import { formatSpiffeId, parseSpiffeId, type SpiffeId } from './spiffe-id';

/** The URI SANs of a peer certificate as Node's TLS reports them. */
function uriSans(cert: Pick<PeerCertificate, 'subjectaltname'>): string[] {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .filter((e: string) => e.startsWith('URI:'))
    .map((e: string) => e.slice(4));
}

/**
 * A TLS `checkServerIdentity` that accepts the server by SPIFFE ID instead of host name: its
 * certificate must name exactly `expected` (or, when only a kind is given, that kind in any
 * trust domain), so addresses in namespaces or on other hosts work.
 */
export function spiffeServerCheck(expected: SpiffeId | { kind: 'control-plane' }): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const uris = uriSans(cert);
    if (uris.length !== 1) return new UnauthenticatedError(`server certificate carries ${uris.length} URI SANs, not one SPIFFE ID`);
    let id: SpiffeId;
    try {
      id = parseSpiffeId(uris[0] as string);
    } catch (err) {
      return new UnauthenticatedError(`server certificate's SPIFFE ID is not one of devicemesh's: ${(err as Error).message}`);
    }
    const ok = 'trustDomain' in expected ? formatSpiffeId(id) === formatSpiffeId(expected) : id.kind === expected.kind;
    return ok ? undefined : new UnauthenticatedError(`server is ${formatSpiffeId(id)}, expected ${'trustDomain' in expected ? formatSpiffeId(expected) : expected.kind}`);
  };
}

/** The chain a TLS peer presented, leaf first, as node:crypto certificates. */
export function presentedChain(leaf: DetailedPeerCertificate): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = leaf; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
  }
  return out;
}

/**
 * Channel options for TLS by SPIFFE ID: grpc-js would send the target's IP address as the TLS
 * server name (which Node deprecates); the name is unused, the identity check is by URI SAN.
 */
export const SPIFFE_CHANNEL_OPTIONS: Readonly<Record<string, string>> = { 'grpc.ssl_target_name_override': 'devicemesh' };
