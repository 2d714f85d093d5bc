import type * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, UnauthenticatedError, ValidationError } from '../../src/errors';
import { toServiceError } from '../../src/grpc/grpc-errors';
import type { Logger } from '../../src/log';
import type { Timestamp } from '../../src/proto/types';
import { formatSpiffeId, parseIdentityArgument, type SpiffeId } from '../../src/security/spiffe-id';
import { AccessRefusal, type AccessControl, peerSerial } from '../security/access-control';
import { DEFAULT_TOKEN_TTL_MS, type TokenRecord } from '../security/bootstrap-tokens';
import type { CertificateAuthority, IssuedCertificate } from '../security/certificate-authority';
import type { IdentityRegistry } from '../security/identity-registry';

interface JoinRequest {
  token: string;
  csrPem: string;
}
interface RenewRequest {
  csrPem: string;
}
interface CertificateResponse {
  certChainPem: string;
  caPem: string;
  spiffeId: string;
  notAfter: Timestamp;
}
interface CreateTokenRequest {
  kind: string;
  id: string;
  ttlSeconds: string;
  reusable: boolean;
  allowedAddresses: string[];
}
interface TokenInfo {
  id: string;
  spiffeId: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
  reusable: boolean;
  usedAt: Timestamp | null;
  allowedAddresses: string[];
}

export interface IdentityServiceOptions {
  ca: CertificateAuthority;
  access: AccessControl;
  /** Lifetime of the certificates issued. */
  certTtlMs: number;
  log: Logger;
}

function timestamp(ms: number): Timestamp {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** `devicemesh.v1.Identity`: Join with a token, Renew with a certificate, and the operator's token management. */
export function identityService(options: IdentityServiceOptions, registry: IdentityRegistry): grpc.UntypedServiceImplementation {
  const { ca, access, log } = options;
  const issued = (cert: IssuedCertificate): CertificateResponse => ({
    certChainPem: cert.certChainPem,
    caPem: cert.caPem,
    spiffeId: formatSpiffeId(cert.identity),
    notAfter: timestamp(cert.notAfter.getTime()),
  });
  const info = (r: TokenRecord): TokenInfo => ({
    id: r.id,
    spiffeId: formatSpiffeId({ trustDomain: ca.trustDomain, kind: r.subject.kind, id: r.subject.id }),
    createdAt: timestamp(r.createdAt),
    expiresAt: timestamp(r.expiresAt),
    reusable: r.reusable !== false,
    usedAt: r.usedAt === undefined ? null : timestamp(r.usedAt),
    allowedAddresses: r.allowedAddresses ?? [],
  });
  const spiffe = (subject: { kind: 'host' | 'workload'; id: string }): string => formatSpiffeId({ trustDomain: ca.trustDomain, ...subject });
  /** Runs a call; errors become its status, identity refusals are also logged and counted. */
  const run = <Req, Res>(
    method: string,
    reason: string,
    fn: (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
  ): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => fn(call))
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            const refusal = err instanceof DeviceMeshError && (err.code === 'UNAUTHENTICATED' || err.code === 'PERMISSION_DENIED');
            if (refusal) access.refused(`Identity/${method}`, { peer: call.getPeer(), identity: undefined, operator: false }, new AccessRefusal(reason, err));
            else log.info({ method, error: (err as Error).message }, 'request refused');
            callback(toServiceError(err) as grpc.ServiceError);
          },
        );
    };

  return {
    Join: run('Join', 'bad_token', async (call: grpc.ServerUnaryCall<JoinRequest, CertificateResponse>) => {
      const cert = await registry.join(call.request.token, (subject) => {
        const identity: SpiffeId = { trustDomain: ca.trustDomain, kind: subject.kind, id: subject.id };
        return ca.issue(call.request.csrPem, identity, options.certTtlMs);
      });
      log.info({ identity: formatSpiffeId(cert.identity), peer: call.getPeer(), serial: cert.serial, notAfter: cert.notAfter.toISOString() }, 'joined the mesh');
      return issued(cert);
    }),
    Renew: run('Renew', 'bad_certificate', async (call: grpc.ServerUnaryCall<RenewRequest, CertificateResponse>) => {
      const identity = access.peerIdentity(call);
      const previous = peerSerial(call);
      if (!previous) throw new UnauthenticatedError('no client certificate to renew');
      const cert = await registry.renew(previous, () => ca.issue(call.request.csrPem, identity, options.certTtlMs));
      log.debug({ identity: formatSpiffeId(identity), notAfter: cert.notAfter.toISOString() }, 'certificate renewed');
      return issued(cert);
    }),
    CreateToken: run('CreateToken', 'operator', (call: grpc.ServerUnaryCall<CreateTokenRequest, { token: string; info: TokenInfo }>) => {
      const { kind, id } = call.request;
      if (kind !== 'host' && kind !== 'workload') throw new ValidationError('kind', `"${kind}" is neither host nor workload`);
      const ttlSeconds = Number(call.request.ttlSeconds || '0');
      if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) throw new ValidationError('ttl_seconds', `${call.request.ttlSeconds} is not a duration`);
      const made = registry.createToken(
        { kind, id },
        { ttlMs: ttlSeconds > 0 ? ttlSeconds * 1000 : DEFAULT_TOKEN_TTL_MS, reusable: call.request.reusable === true, allowedAddresses: call.request.allowedAddresses ?? [] },
      );
      log.info(
        { token: made.record.id, kind, id, reusable: made.record.reusable, allowedAddresses: made.record.allowedAddresses, expiresAt: new Date(made.record.expiresAt).toISOString() },
        'bootstrap token created',
      );
      return { token: made.token, info: info(made.record) };
    }),
    ListTokens: run('ListTokens', 'operator', () => ({ tokens: registry.listTokens().map(info) })),
    DeleteToken: run('DeleteToken', 'operator', (call: grpc.ServerUnaryCall<{ id: string }, { revoked: string[] }>) => {
      const revocation = registry.deleteToken(call.request.id);
      const revoked = revocation.subjects.map(spiffe);
      log.info({ token: call.request.id, revoked, certificates: revocation.certificates }, 'bootstrap token deleted; what it issued is revoked');
      return { revoked };
    }),
    RevokeIdentity: run('RevokeIdentity', 'operator', (call: grpc.ServerUnaryCall<{ identity: string }, { spiffeId: string; certificates: number }>) => {
      const subject = parseIdentityArgument(call.request.identity);
      const revocation = registry.revoke(subject);
      log.warn({ identity: spiffe(subject), certificates: revocation.certificates }, 'identity revoked');
      return { spiffeId: spiffe(subject), certificates: revocation.certificates };
    }),
    WatchRevocations: (call: grpc.ServerWritableStream<object, { serials: string[] }>): void => {
      const send = (serials: ReadonlySet<string>): void => void call.write({ serials: [...serials] });
      const unsubscribe = registry.onRevoked(send);
      call.on('cancelled', unsubscribe);
      call.on('close', unsubscribe);
      send(registry.revokedSerials());
    },
  };
}
