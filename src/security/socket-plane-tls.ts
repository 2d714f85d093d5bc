import { X509Certificate } from 'node:crypto';
import type * as tls from 'node:tls';
import { UnauthenticatedError } from '../errors';
import { formatSpiffeId, sameIdentity, type SpiffeId, spiffeIdOfCertificate } from './spiffe-id';
import type { TlsMaterial } from './tls-identity';

/**
 * The agent's TLS context: client certificates are requested and verified by OpenSSL against the
 * CA bundle; the server itself closes every socket whose verification failed (see
 * `verifiedPeerIdentity`), because Node's own `rejectUnauthorized` on a server destroys the socket
 * after the handshake without any event, leaving nothing to log or count.
 */
export function socketPlaneServerContext(material: TlsMaterial): tls.SecureContextOptions & tls.TlsOptions {
  return {
    key: material.key,
    cert: material.cert,
    ca: material.ca,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  };
}

/** The sidecar's dial options: its own certificate, the CA bundle, and the agent's SPIFFE ID as the only name accepted. */
export function socketPlaneClientOptions(material: TlsMaterial, agent: SpiffeId): tls.ConnectionOptions {
  return {
    key: material.key,
    cert: material.cert,
    ca: material.ca,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    checkServerIdentity: (_host, cert) => checkPeerSpiffeId(cert, agent),
  };
}

/**
 * checkServerIdentity by SPIFFE ID instead of host name: addresses may be namespace or host IPs,
 * the identity is what matters. Returns the error (Node's contract) rather than throwing it.
 */
export function checkPeerSpiffeId(cert: tls.PeerCertificate, expected: SpiffeId): Error | undefined {
  try {
    const got = spiffeIdOfCertificate(new X509Certificate(cert.raw));
    if (sameIdentity(got, expected)) return undefined;
    return new UnauthenticatedError(`peer presented ${formatSpiffeId(got)}, expected ${formatSpiffeId(expected)}`);
  } catch (err) {
    return err instanceof UnauthenticatedError ? err : new UnauthenticatedError(`peer certificate unreadable: ${(err as Error).message}`);
  }
}

/** Why a TLS peer is refused, as a `reason` label: stable, few values. */
export type TlsRefusal = 'revoked_certificate' | 'no_certificate' | 'expired_certificate' | 'untrusted_certificate' | 'no_identity' | 'not_tls' | 'handshake_timeout' | 'tls_error';

/** OpenSSL verification codes as Node reports them (`authorizationError`), grouped by what an operator does about them. */
const VERIFY_REASONS: Partial<Record<string, TlsRefusal>> = {
  CERT_HAS_EXPIRED: 'expired_certificate',
  CERT_NOT_YET_VALID: 'expired_certificate',
};

/**
 * The verified peer's SPIFFE ID on a server socket after its handshake; UnauthenticatedError
 * with the refusal reason when the certificate is missing, not from our CA, expired, or names no
 * devicemesh identity.
 */
export function verifiedPeerIdentity(socket: tls.TLSSocket): SpiffeId {
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw new PeerRefusedError('no_certificate', 'no client certificate presented');
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? 'unknown');
    throw new PeerRefusedError(VERIFY_REASONS[code] ?? 'untrusted_certificate', `client certificate rejected: ${code}`);
  }
  try {
    return spiffeIdOfCertificate(cert);
  } catch (err) {
    throw new PeerRefusedError('no_identity', (err as Error).message);
  }
}

/** A TLS peer the server will not talk to, with the `reason` label it is counted under. */
export class PeerRefusedError extends UnauthenticatedError {
  constructor(
    readonly reason: TlsRefusal,
    message: string,
  ) {
    super(message);
  }
}

/** The reason label of a handshake that failed before any certificate was looked at (Node's tlsClientError). */
export function handshakeRefusal(err: Error & { code?: string }): TlsRefusal {
  const code = err.code ?? '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LAYER/.test(code)) return 'not_tls';
  if (/CERTIFICATE_EXPIRED/.test(code)) return 'expired_certificate';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE/.test(code)) return 'no_certificate';
  if (/UNKNOWN_CA|CERTIFICATE/.test(code)) return 'untrusted_certificate';
  return 'tls_error';
}
