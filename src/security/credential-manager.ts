import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { DeviceMeshError, errorMessage, UnauthenticatedError, UnavailableError, ValidationError } from '../errors';
import type { Logger } from '../log';
import { ReplicaSet } from '../grpc/replica-set';
import { serviceClient } from '../proto/load';
import { parseHostPort } from '../util/address';
import { Backoff } from '../util/backoff';
import { presentedChain, SPIFFE_CHANNEL_OPTIONS, spiffeServerCheck } from './control-plane-identity';
import { formatSpiffeId, sameIdentity, spiffeIdOfCertificate } from './spiffe-id';
import type { TlsIdentity, TlsMaterial } from './tls-identity';
import { certificateDigest, createCsr, generateKey, isSelfSigned, splitCertificates, toPem } from './x509';

/** What a process is in the mesh. */
export interface MemberIdentity {
  kind: 'host' | 'workload';
  id: string;
}

export interface CredentialManagerOptions {
  /** host:port of the control plane's gRPC. */
  controlPlane: string;
  identity: MemberIdentity;
  /** The join token, read again on each attempt (a token file may be provisioned or replaced meanwhile). */
  token?: () => string | undefined;
  /** Whether a refused token is final (a literal --token) or may be replaced (a --token-file). */
  tokenReplaceable?: boolean;
  /** Where the key and certificate are kept across restarts. */
  identityDir?: string;
  log: Logger;
  /** Renew when this share of the remaining lifetime has passed (default 2/3). */
  renewAt?: number;
}

interface CertificateResponse {
  certChainPem: string;
  caPem: string;
  spiffeId: string;
}

type Unary<Req> = (req: Req, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: CertificateResponse) => void) => void;
interface IdentityClient extends grpc.Client {
  join: Unary<{ token: string; csrPem: string }>;
  renew: Unary<{ csrPem: string }>;
}

const TOKEN_PATTERN = /^DMT1-([0-9a-f]{64})-/;
const CALL_TIMEOUT_MS = 10_000;

/**
 * A mesh member's credentials: joins with its bootstrap token (the control plane is trusted
 * only if it presents the CA the token pins), renews before expiry with its certificate, and
 * pushes each new certificate to its users (gRPC channels via `channelCredentials()`, the socket
 * plane via the TlsIdentity interface). Failures are retried with backoff; established
 * connections keep their credentials.
 */
export class CredentialManager implements TlsIdentity {
  private material: TlsMaterial | undefined;
  private readonly listeners = new Set<(m: TlsMaterial) => void>();
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  private readonly backoff = new Backoff(250, 5000);
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  private credentials: grpc.ChannelCredentials | undefined;
  /** Control-plane replicas (`a:15010,b:15010`); a failed join or renewal tries the next one. Each call dials afresh, with the credentials it needs. */
  private readonly replicas: ReplicaSet<undefined>;

  constructor(private readonly options: CredentialManagerOptions) {
    this.replicas = new ReplicaSet(options.controlPlane, () => undefined);
  }

  private get controlPlane(): string {
    return this.replicas.current().address;
  }

  /** Resolves once the process has a certificate (from its identity dir, or by joining, retrying while the control plane is away). */
  async start(): Promise<void> {
    const stored = this.load();
    if (stored) {
      this.set(stored, 'loaded');
      return;
    }
    for (;;) {
      if (this.closed) throw new UnavailableError('closed before the process joined the mesh');
      try {
        this.set(await this.join(), 'joined');
        return;
      } catch (err) {
        const final = err instanceof DeviceMeshError && !(err instanceof UnavailableError) && !this.options.tokenReplaceable;
        if (final) throw err;
        const delay = this.backoff.next();
        this.options.log.warn({ controlPlane: this.controlPlane, error: errorMessage(err), retryInMs: Math.round(delay) }, 'joining the mesh failed; retrying');
        this.replicas.failed();
        await this.sleep(delay);
      }
    }
  }

  current(): TlsMaterial {
    if (!this.material) throw new UnavailableError('no certificate yet: the process has not joined the mesh');
    return this.material;
  }

  onRotate(listener: (material: TlsMaterial) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * mTLS channel credentials that follow rotations and accept only the control plane's SPIFFE ID
   * (of our trust domain). Usable before the first certificate: connections wait for it.
   */
  channelCredentials(): grpc.ChannelCredentials {
    const provider: grpc.experimental.CertificateProvider = {
      addCaCertificateListener: (l) => {
        this.caListeners.add(l);
        if (this.material) l({ caCertificate: Buffer.from(this.material.ca) });
      },
      removeCaCertificateListener: (l) => this.caListeners.delete(l),
      addIdentityCertificateListener: (l) => {
        this.identityListeners.add(l);
        if (this.material) l({ certificate: Buffer.from(this.material.cert), privateKey: Buffer.from(this.material.key) });
      },
      removeIdentityCertificateListener: (l) => this.identityListeners.delete(l),
    };
    this.credentials ??= grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
      checkServerIdentity: (host, cert) => spiffeServerCheck({ trustDomain: this.current().identity.trustDomain, kind: 'control-plane', id: '' })(host, cert),
    });
    return this.credentials;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.wake = resolve;
    });
  }

  private set(material: TlsMaterial, how: 'loaded' | 'joined' | 'renewed'): void {
    this.material = material;
    this.backoff.reset();
    this.save(material);
    for (const l of this.caListeners) l({ caCertificate: Buffer.from(material.ca) });
    for (const l of this.identityListeners) l({ certificate: Buffer.from(material.cert), privateKey: Buffer.from(material.key) });
    if (how === 'renewed') for (const l of this.listeners) l(material);
    const remaining = material.notAfter.getTime() - Date.now();
    const delay = Math.max(500, remaining * (this.options.renewAt ?? 2 / 3));
    this.options.log.info({ identity: formatSpiffeId(material.identity), notAfter: material.notAfter.toISOString(), renewInMs: Math.round(delay) }, `certificate ${how}`);
    this.scheduleRenew(delay);
  }

  private scheduleRenew(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.renewOrRejoin().then(
        (m) => this.set(m, 'renewed'),
        (err: unknown) => {
          const delay = this.backoff.next();
          this.options.log.warn({ controlPlane: this.controlPlane, error: errorMessage(err), retryInMs: Math.round(delay) }, 'renewing the certificate failed; retrying');
          this.replicas.failed();
          this.scheduleRenew(delay);
        },
      );
    }, delayMs);
  }

  private async renewOrRejoin(): Promise<TlsMaterial> {
    const m = this.current();
    if (m.notAfter.getTime() > Date.now()) return this.renew(m);
    // Expired while the control plane was away: only the token can get a new one.
    if (!this.options.token?.()) throw new UnauthenticatedError('the certificate expired and there is no join token to join again');
    return this.join();
  }

  private async renew(m: TlsMaterial): Promise<TlsMaterial> {
    const key = await generateKey();
    const csrPem = await createCsr(key, m.identity);
    const client = this.identityClient(this.channelCredentials());
    try {
      const res = await call(client, 'renew', { csrPem });
      return this.accept(res, key.keyPem, splitCertificates(m.ca, 'ca'));
    } finally {
      client.close();
    }
  }

  /** Joins with the token, trusting the control plane only if its chain holds the CA the token pins. */
  private async join(): Promise<TlsMaterial> {
    const token = this.options.token?.()?.trim();
    if (!token) throw new ValidationError('--token', 'is required to join the mesh (or --token-file, or an --identity-dir with a valid certificate)');
    const pin = TOKEN_PATTERN.exec(token)?.[1];
    if (!pin) throw new ValidationError('--token', 'is not a devicemesh join token (DMT1-<64 hex>-<id>-<secret>)');
    const trusted = await pinnedTrust(this.controlPlane, pin);
    const key = await generateKey();
    // The trust domain is not known before joining, and the CA ignores a CSR's names anyway.
    const csrPem = await createCsr(key);
    const creds = grpc.credentials.createSsl(Buffer.from(toPem(trusted)), null, null, {
      checkServerIdentity: (host, cert) => spiffeServerCheck({ kind: 'control-plane' })(host, cert) ?? pinCheck(cert as tls.DetailedPeerCertificate, pin),
    });
    const client = this.identityClient(creds);
    try {
      const res = await call(client, 'join', { token, csrPem });
      return this.accept(res, key.keyPem, trusted);
    } finally {
      client.close();
    }
  }

  /** Checks a Join/Renew answer: our identity, a chain to the trust we had. */
  private accept(res: CertificateResponse, keyPem: string, trusted: X509Certificate[]): TlsMaterial {
    const chain = splitCertificates(res.certChainPem, 'cert_chain_pem');
    const leaf = chain[0] as X509Certificate;
    const identity = spiffeIdOfCertificate(leaf);
    const wanted = { trustDomain: identity.trustDomain, ...this.options.identity };
    if (!sameIdentity(identity, wanted)) {
      throw new UnauthenticatedError(`the control plane issued ${formatSpiffeId(identity)}, but this process is ${formatSpiffeId(wanted)} (the token names another identity?)`);
    }
    const bundle = splitCertificates(res.caPem, 'ca_pem');
    if (!trusted.some((t) => bundle.some((b) => certificateDigest(b) === certificateDigest(t)))) {
      throw new UnauthenticatedError('the trust bundle the control plane sent does not hold the CA this process trusts');
    }
    return { key: keyPem, cert: res.certChainPem, ca: res.caPem, identity, notAfter: new Date(leaf.validTo) };
  }

  private identityClient(creds: grpc.ChannelCredentials): IdentityClient {
    const Ctor = serviceClient('devicemesh.v1.Identity');
    return new Ctor(this.controlPlane, creds, SPIFFE_CHANNEL_OPTIONS) as unknown as IdentityClient;
  }

  private files(): { key: string; cert: string; ca: string } | undefined {
    const dir = this.options.identityDir;
    return dir ? { key: path.join(dir, 'key.pem'), cert: path.join(dir, 'cert.pem'), ca: path.join(dir, 'ca.pem') } : undefined;
  }

  /** A stored certificate still valid for a while, for this identity. */
  private load(): TlsMaterial | undefined {
    const files = this.files();
    if (!files || !fs.existsSync(files.cert)) return undefined;
    try {
      const cert = fs.readFileSync(files.cert, 'utf8');
      const leaf = splitCertificates(cert, files.cert)[0] as X509Certificate;
      const identity = spiffeIdOfCertificate(leaf);
      const notAfter = new Date(leaf.validTo);
      // Usable while still valid for a moment: it is renewed at once (2/3 of what is left).
      if (identity.kind !== this.options.identity.kind || identity.id !== this.options.identity.id || notAfter.getTime() < Date.now() + 1000) {
        this.options.log.info({ identity: formatSpiffeId(identity), notAfter: notAfter.toISOString() }, 'stored certificate is not usable; joining');
        return undefined;
      }
      return { key: fs.readFileSync(files.key, 'utf8'), cert, ca: fs.readFileSync(files.ca, 'utf8'), identity, notAfter };
    } catch (err) {
      this.options.log.warn({ dir: this.options.identityDir, error: errorMessage(err) }, 'stored identity unreadable; joining');
      return undefined;
    }
  }

  private save(m: TlsMaterial): void {
    const files = this.files();
    if (!files) return;
    try {
      fs.mkdirSync(path.dirname(files.key), { recursive: true, mode: 0o700 });
      for (const [file, text, mode] of [[files.key, m.key, 0o600], [files.cert, m.cert, 0o644], [files.ca, m.ca, 0o644]] as const) {
        const tmp = `${file}.tmp`;
        fs.writeFileSync(tmp, text, { mode });
        fs.renameSync(tmp, file);
      }
    } catch (err) {
      this.options.log.warn({ dir: this.options.identityDir, error: errorMessage(err) }, 'could not store the certificate');
    }
  }
}

function call<Req>(client: IdentityClient, method: 'join' | 'renew', req: Req & object): Promise<CertificateResponse> {
  return new Promise((resolve, reject) => {
    (client[method] as Unary<Req>).call(client, req, { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => {
      if (!err && res) resolve(res);
      else if (!err || err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
        reject(new UnavailableError(`control plane unreachable: ${err?.details || err?.message || 'no answer'}`));
      } else if (err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED) {
        reject(new UnauthenticatedError(`control plane refused the ${method}: ${err.details}`));
      } else {
        reject(new DeviceMeshError('INTERNAL', `${method} failed: ${err.details || err.message}`));
      }
    });
  });
}

/** The TLS peer holds the pinned CA in its chain (every certificate signed by the next). */
function pinCheck(cert: tls.DetailedPeerCertificate, pin: string): Error | undefined {
  const chain = presentedChain(cert);
  const at = chain.findIndex((c) => certificateDigest(c) === pin);
  if (at < 0) return new UnauthenticatedError('the control plane does not present the CA the token pins (a token of another mesh?)');
  for (let i = 0; i < at; i++) {
    const child = chain[i] as X509Certificate;
    const parent = chain[i + 1] as X509Certificate;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) return new UnauthenticatedError('the control plane\'s chain is broken');
  }
  return undefined;
}

/**
 * Fetches the control plane's chain without trusting it, finds the CA the token pins and returns
 * it with its issuers up to the root: what the Join connection then verifies the server against.
 */
function pinnedTrust(address: string, pin: string): Promise<X509Certificate[]> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    socket.setTimeout(CALL_TIMEOUT_MS, () => socket.destroy(new UnavailableError(`no TLS handshake with ${address} in ${CALL_TIMEOUT_MS} ms`)));
    socket.once('error', (err) => reject(err instanceof DeviceMeshError ? err : new UnavailableError(`control plane at ${address} unreachable over TLS: ${err.message}`)));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate(true);
      socket.destroy();
      const problem = spiffeServerCheck({ kind: 'control-plane' })(host, peer) ?? pinCheck(peer, pin);
      if (problem) {
        reject(problem);
        return;
      }
      const chain = presentedChain(peer);
      const from = chain.findIndex((c) => certificateDigest(c) === pin);
      const trusted = chain.slice(from);
      const top = trusted[trusted.length - 1] as X509Certificate;
      if (!isSelfSigned(top)) {
        reject(new UnauthenticatedError('the control plane\'s chain does not reach a root; present the CA chain up to its root (--ca-cert)'));
        return;
      }
      resolve(trusted);
    });
  });
}
