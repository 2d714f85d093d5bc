import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, errorMessage, PermissionDeniedError, UnauthenticatedError } from '../../src/errors';
import { toServiceError } from '../../src/grpc/grpc-errors';
import type { Logger } from '../../src/log';
import { formatSpiffeId, spiffeIdOfCertificate, type SpiffeId } from '../../src/security/spiffe-id';
import { checkIssuedBy } from '../../src/security/x509';
import { RefusalLog } from '../../src/security/refusal-log';
import type { Stats } from '../../src/telemetry/stats';
import type { CertificateAuthority } from './certificate-authority';
import type { OperatorCredential } from './operator-credential';

/**
 * Who may call a method:
 * - open: anyone (reflection; Join, which checks its token itself);
 * - read: loopback peers, any valid mesh certificate, or the operator credential;
 * - operator: the operator credential (writes, token management);
 * - member: a valid host or workload certificate (Renew; ADS, whose node.id is checked against it);
 * - host-self: the certificate of the host the request's hostId names (ReportHost, ReportLoad).
 */
export type AccessRule = 'open' | 'read' | 'operator' | 'member' | 'host-self';

/** Every method of the control plane's own services; a method not listed is refused. */
export const ACCESS_RULES: Readonly<Record<string, AccessRule>> = {
  '/devicemesh.v1.Registry/ListEndpoints': 'read',
  '/devicemesh.v1.Registry/GetEndpoint': 'read',
  '/devicemesh.v1.Registry/WatchEndpoints': 'read',
  '/devicemesh.v1.Registry/RegisterEndpoint': 'operator',
  '/devicemesh.v1.Registry/DeregisterEndpoint': 'operator',
  '/devicemesh.v1.Registry/ReportHost': 'host-self',
  '/devicemesh.v1.Registry/ReportLoad': 'host-self',
  '/devicemesh.v1.Bindings/Apply': 'operator',
  '/devicemesh.v1.Bindings/Delete': 'operator',
  '/devicemesh.v1.Bindings/List': 'read',
  '/devicemesh.v1.Bindings/ListMappings': 'read',
  '/devicemesh.v1.Status/ListProxies': 'read',
  '/devicemesh.v1.Identity/Join': 'open',
  '/devicemesh.v1.Identity/Renew': 'member',
  '/devicemesh.v1.Identity/CreateToken': 'operator',
  '/devicemesh.v1.Identity/ListTokens': 'operator',
  '/devicemesh.v1.Identity/DeleteToken': 'operator',
  '/devicemesh.v1.Identity/RevokeIdentity': 'operator',
  '/devicemesh.v1.Identity/WatchRevocations': 'member',
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources': 'member',
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources': 'member',
};

/** A refusal: the error the caller gets and the short reason it is counted under. */
export class AccessRefusal extends DeviceMeshError {
  constructor(
    readonly reason: string,
    override readonly cause: DeviceMeshError,
  ) {
    super(cause.code, cause.message);
  }
}

/** What a server call offers for authentication. */
type AnyCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext' | 'metadata'>;

/** Who made a call, as far as it could be established. */
export interface Caller {
  peer: string;
  identity: SpiffeId | undefined;
  operator: boolean;
}

/** The serial of the call's client certificate, upper-case hex; undefined without one. */
export function peerSerial(call: AnyCall): string | undefined {
  return call.getAuthContext()?.sslPeerCertificate?.serialNumber?.toUpperCase();
}

/** What the control plane knows of the member certificates it issued. */
export interface CertificateChecks {
  /** Throws (UnauthenticatedError) when the certificate is revoked. */
  check(serial: string): void;
  /** The socket-plane addresses the certificate's host may advertise; empty: any. */
  allowedAddresses(serial: string): readonly string[];
  /** The join the certificate descends from; undefined when not recorded. */
  lineage(serial: string): string | undefined;
}

/** Two certificates of one member process (one join and its renewals); unknown lineages are taken as the same. */
export function sameMember(certificates: CertificateChecks, a: string, b: string): boolean {
  const la = certificates.lineage(a);
  const lb = certificates.lineage(b);
  return la === undefined || lb === undefined || la === lb;
}

const LOOPBACK = /^(127\.|\[::1\]|::1$|\[::ffff:127\.|::ffff:127\.)/;

/**
 * Authentication and authorization of every control-plane RPC, in one place. Client
 * certificates are requested by the TLS server but not required, so each call is checked here:
 * the certificate chains to the mesh CA and is valid now, its SPIFFE ID is in our trust domain;
 * the operator credential is `authorization: Bearer <token>`. Every refusal is logged with the
 * peer, the identity and the reason, and counted in `auth_refused{reason}`.
 */
export class AccessControl {
  constructor(
    private readonly options: {
      ca: CertificateAuthority;
      operator: OperatorCredential;
      stats: Stats;
      log: Logger;
      /** Revocations and address pins; absent: none. */
      certificates?: CertificateChecks;
      /** The certificate serial of the discovery stream that holds a host now, if any. */
      hostOwner?: (hostId: string) => string | undefined;
    },
  ) {
    this.refusals = new RefusalLog('auth_refused', options.stats, options.log);
  }

  /** Every refusal counted, logged at most once per reason and peer address per window. */
  private readonly refusals: RefusalLog;

  /**
   * The SPIFFE ID of the call's client certificate; AccessRefusal when there is none valid.
   * Validity in time is the TLS handshake's: Node reports a certificate that was expired (or of
   * another CA) when the connection was made as no certificate at all. A connection outlives the
   * certificate it was made with, as in Envoy: grpc-js does not re-handshake, so judging expiry
   * per call would refuse every call of a member on its live connection once it has rotated.
   */
  peerIdentity(call: AnyCall): SpiffeId {
    const peerCert = call.getAuthContext()?.sslPeerCertificate;
    if (!peerCert?.raw) {
      throw new AccessRefusal(
        'no_client_certificate',
        new UnauthenticatedError('no valid client certificate (none presented, not issued by this mesh\'s CA, or expired)'),
      );
    }
    try {
      const cert = new X509Certificate(peerCert.raw);
      checkIssuedBy(cert, this.options.ca.certificate);
      const id = spiffeIdOfCertificate(cert);
      if (id.trustDomain !== this.options.ca.trustDomain) {
        throw new UnauthenticatedError(`certificate is for trust domain ${id.trustDomain}, not ${this.options.ca.trustDomain}`);
      }
      try {
        this.options.certificates?.check(cert.serialNumber);
      } catch (err) {
        throw new AccessRefusal('revoked_certificate', err instanceof DeviceMeshError ? err : new UnauthenticatedError(errorMessage(err)));
      }
      return id;
    } catch (err) {
      if (err instanceof AccessRefusal && err.reason === 'revoked_certificate') throw err;
      const cause = err instanceof AccessRefusal ? err.cause : err instanceof DeviceMeshError ? err : new UnauthenticatedError(errorMessage(err));
      throw new AccessRefusal('bad_certificate', cause);
    }
  }

  /** Checks a call against its method's rule; returns who called. */
  authorize(path: string, call: AnyCall, request?: unknown): Caller {
    const caller: Caller = { peer: call.getPeer(), identity: undefined, operator: false };
    try {
      const rule = ACCESS_RULES[path];
      if (rule === undefined) throw new AccessRefusal('unknown_method', new PermissionDeniedError(`${path} is not open to anyone`));
      if (rule === 'open') return caller;
      if (rule === 'operator') {
        this.operator(call);
        caller.operator = true;
        return caller;
      }
      if (rule === 'read') {
        if (this.bearer(call) !== undefined) {
          this.operator(call);
          caller.operator = true;
        } else if (!LOOPBACK.test(caller.peer)) {
          caller.identity = this.peerIdentity(call);
        }
        return caller;
      }
      caller.identity = this.peerIdentity(call);
      if (caller.identity.kind !== 'host' && caller.identity.kind !== 'workload') {
        throw new AccessRefusal('wrong_identity', new PermissionDeniedError(`${formatSpiffeId(caller.identity)} is neither a host nor a workload`));
      }
      if (rule === 'host-self') {
        const hostId = (request as { hostId?: unknown } | undefined)?.hostId;
        if (caller.identity.kind !== 'host' || caller.identity.id !== hostId) {
          throw new AccessRefusal(
            'wrong_identity',
            new PermissionDeniedError(`${formatSpiffeId(caller.identity)} may not report for host ${JSON.stringify(hostId ?? '')}`),
          );
        }
        // Only the agent that holds the host's discovery stream reports its devices and load.
        const owner = this.options.hostOwner?.(hostId as string);
        const certificates = this.options.certificates;
        if (owner && certificates && !sameMember(certificates, owner, peerSerial(call) ?? '')) {
          throw new AccessRefusal('not_host_owner', new PermissionDeniedError(`host ${String(hostId)} is served by another live agent; this one may not report for it`));
        }
      }
      return caller;
    } catch (err) {
      throw this.refused(path, caller, err);
    }
  }

  /**
   * A discovery stream's node must be the certificate's own host (agent) or workload (sidecar),
   * and an agent's socket plane one its certificate may advertise.
   */
  checkNode(call: AnyCall, kind: 'agent' | 'sidecar', nodeId: string, socketPlane: string): void {
    const caller: Caller = { peer: call.getPeer(), identity: undefined, operator: false };
    try {
      caller.identity = this.peerIdentity(call);
      const wanted = kind === 'agent' ? 'host' : 'workload';
      if (caller.identity.kind !== wanted || caller.identity.id !== nodeId) {
        throw new AccessRefusal(
          'wrong_identity',
          new PermissionDeniedError(`${formatSpiffeId(caller.identity)} may not subscribe as ${kind} ${JSON.stringify(nodeId)} (node.id must be its own ${wanted} id)`),
        );
      }
      const allowed = kind === 'agent' ? (this.options.certificates?.allowedAddresses(peerSerial(call) ?? '') ?? []) : [];
      if (allowed.length > 0 && !allowed.includes(socketPlane)) {
        throw new AccessRefusal(
          'address_not_allowed',
          new PermissionDeniedError(`${formatSpiffeId(caller.identity)} may advertise only ${allowed.join(', ')} as its socket plane, not ${socketPlane}`),
        );
      }
    } catch (err) {
      throw this.refused('ADS node', caller, err);
    }
  }

  /** Logs and counts a refusal (of a call, or of a token by the Identity service); returns the error to send. */
  refused(what: string, caller: Caller, err: unknown): DeviceMeshError {
    const refusal =
      err instanceof AccessRefusal
        ? err
        : new AccessRefusal('error', err instanceof DeviceMeshError ? err : new UnauthenticatedError(errorMessage(err)));
    this.refusals.refuse(
      refusal.reason,
      caller.peer,
      { method: what, identity: caller.identity ? formatSpiffeId(caller.identity) : undefined, error: refusal.message },
      'call refused',
    );
    return refusal.cause;
  }

  /** Wraps every method of a service so that it is authorized first; refused calls end with the error's status. */
  guard(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
    const guarded: grpc.UntypedServiceImplementation = {};
    for (const [name, method] of Object.entries(definition)) {
      const handler = implementation[name] as ((...args: unknown[]) => void) | undefined;
      if (!handler) continue;
      if (!method.requestStream) {
        // Unary and server-streaming calls have their request already.
        guarded[name] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>): void => {
          try {
            this.authorize(method.path, call, call.request);
          } catch (err) {
            if (callback) callback(toServiceError(err) as grpc.ServiceError);
            else (call as unknown as NodeJS.EventEmitter).emit('error', toServiceError(err));
            return;
          }
          handler.call(implementation, call, callback);
        }) as grpc.UntypedHandleCall;
      } else {
        guarded[name] = ((call: grpc.ServerDuplexStream<unknown, unknown>): void => {
          try {
            this.authorize(method.path, call);
          } catch (err) {
            call.emit('error', toServiceError(err));
            return;
          }
          handler.call(implementation, call);
        }) as grpc.UntypedHandleCall;
      }
    }
    return guarded;
  }

  private bearer(call: AnyCall): string | undefined {
    const value = call.metadata.get('authorization')[0];
    if (typeof value !== 'string') return undefined;
    const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
    return m ? (m[1] as string) : value;
  }

  private operator(call: AnyCall): void {
    const token = this.bearer(call);
    if (token === undefined) {
      throw new AccessRefusal('no_operator_credential', new UnauthenticatedError('this call needs the operator credential (authorization: Bearer <operator token>)'));
    }
    if (!this.options.operator.matches(token)) {
      throw new AccessRefusal('bad_operator_credential', new PermissionDeniedError('the operator credential is not valid'));
    }
  }
}
