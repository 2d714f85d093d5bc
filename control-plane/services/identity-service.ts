import { randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, NotFoundError, ValidationError } from '../../src/errors';
import { toServiceError } from '../../src/grpc/grpc-errors';
import type { Logger } from '../../src/log';
import type { Timestamp } from '../../src/proto/types';
import { formatSpiffeId, type SpiffeId } from '../../src/security/spiffe-id';
import { AccessRefusal, type AccessControl } from '../security/access-control';
import { BootstrapTokens, DEFAULT_TOKEN_TTL_MS, parseToken, type TokenRecord, type TokenSubject } from '../security/bootstrap-tokens';
import type { CertificateAuthority, IssuedCertificate } from '../security/certificate-authority';
import type { TokenStore } from '../security/token-store';

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
}
interface TokenInfo {
  id: string;
  spiffeId: string;
  createdAt: Timestamp;
  expiresAt: Timestamp;
}

export interface IdentityServiceOptions {
  ca: CertificateAuthority;
  tokens: TokenStore;
  access: AccessControl;
  /** Lifetime of the certificates issued. */
  certTtlMs: number;
  log: Logger;
  now?: () => number;
}

/** The bootstrap tokens of a control plane, kept in its data directory. */
export class TokenRegistry {
  private readonly core: BootstrapTokens;

  constructor(
    private readonly store: TokenStore,
    private readonly ca: CertificateAuthority,
    now: () => number = Date.now,
  ) {
    this.core = new BootstrapTokens(store.load(), now, randomBytes);
  }

  create(subject: TokenSubject, ttlMs: number = DEFAULT_TOKEN_TTL_MS): { token: string; record: TokenRecord } {
    this.core.expire();
    const made = this.core.create(subject, ttlMs, this.ca.digest());
    this.store.save(this.core.records());
    return made;
  }

  verify(tokenText: string): TokenSubject {
    return this.core.verify(parseToken(tokenText), this.ca.digest());
  }

  list(): TokenRecord[] {
    if (this.core.expire()) this.store.save(this.core.records());
    return this.core.records();
  }

  delete(id: string): void {
    if (!this.core.delete(id)) throw new NotFoundError(`token ${id} does not exist`);
    this.store.save(this.core.records());
  }
}

function timestamp(ms: number): Timestamp {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** `devicemesh.v1.Identity`: Join with a token, Renew with a certificate, and the operator's token management. */
export function identityService(options: IdentityServiceOptions, registry: TokenRegistry): grpc.UntypedServiceImplementation {
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
  });
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
      const subject = registry.verify(call.request.token);
      const identity: SpiffeId = { trustDomain: ca.trustDomain, kind: subject.kind, id: subject.id };
      const cert = await ca.issue(call.request.csrPem, identity, options.certTtlMs);
      log.info({ identity: formatSpiffeId(identity), peer: call.getPeer(), notAfter: cert.notAfter.toISOString() }, 'joined the mesh');
      return issued(cert);
    }),
    Renew: run('Renew', 'bad_certificate', async (call: grpc.ServerUnaryCall<RenewRequest, CertificateResponse>) => {
      const identity = access.peerIdentity(call);
      const cert = await ca.issue(call.request.csrPem, identity, options.certTtlMs);
      log.debug({ identity: formatSpiffeId(identity), notAfter: cert.notAfter.toISOString() }, 'certificate renewed');
      return issued(cert);
    }),
    CreateToken: run('CreateToken', 'operator', (call: grpc.ServerUnaryCall<CreateTokenRequest, { token: string; info: TokenInfo }>) => {
      const { kind, id } = call.request;
      if (kind !== 'host' && kind !== 'workload') throw new ValidationError('kind', `"${kind}" is neither host nor workload`);
      const ttlSeconds = Number(call.request.ttlSeconds || '0');
      if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 0) throw new ValidationError('ttl_seconds', `${call.request.ttlSeconds} is not a duration`);
      const made = registry.create({ kind, id }, ttlSeconds > 0 ? ttlSeconds * 1000 : DEFAULT_TOKEN_TTL_MS);
      log.info({ token: made.record.id, kind, id, expiresAt: new Date(made.record.expiresAt).toISOString() }, 'bootstrap token created');
      return { token: made.token, info: info(made.record) };
    }),
    ListTokens: run('ListTokens', 'operator', () => ({ tokens: registry.list().map(info) })),
    DeleteToken: run('DeleteToken', 'operator', (call: grpc.ServerUnaryCall<{ id: string }, object>) => {
      registry.delete(call.request.id);
      log.info({ token: call.request.id }, 'bootstrap token deleted');
      return {};
    }),
  };
}
