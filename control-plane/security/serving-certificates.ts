import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { ServedNames } from '../../src/security/served-names';
import type { SpiffeId } from '../../src/security/spiffe-id';
import { generateKey } from '../../src/security/x509';

type CaCertificateUpdateListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdateListener = grpc.experimental.IdentityCertificateUpdateListener;
import type { CertificateAuthority } from './certificate-authority';

/** Renewed when this share of its lifetime has passed. */
const RENEW_AT = 2 / 3;
const RETRY_MS = 5000;

/**
 * The control plane's own serving certificate (spiffe://<td>/control-plane, plus the DNS and IP
 * names it is reached by), renewed before it expires, as a grpc-js CertificateProvider that pushes each new one to the TLS server (open
 * connections keep theirs).
 */
export class ServingCertificates implements grpc.experimental.CertificateProvider {
  private identity: { certificate: Buffer; privateKey: Buffer } | undefined;
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<IdentityCertificateUpdateListener>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  notAfter = new Date(0);

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly subject: SpiffeId,
    private readonly ttlMs: number,
    private readonly names: ServedNames,
    private readonly log: Logger,
  ) {}

  /** Issues the first certificate; later ones follow on a timer. */
  async start(): Promise<void> {
    await this.rotate();
  }

  credentials(): grpc.ServerCredentials {
    // One object provides both the trust bundle and the identity; no client certificate is
    // required at the TLS layer (Join has none): each RPC is authorized by the access control.
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, false);
  }

  /**
   * Pushes the current certificate again. grpc-js's server reads the credentials' options when
   * it binds, before it watches them: the push after binding is what makes the listener valid.
   */
  refresh(): void {
    if (this.identity) for (const l of this.identityListeners) l(this.identity);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  addCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    listener({ caCertificate: Buffer.from(this.ca.bundlePem()) });
  }

  removeCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    if (this.identity) listener(this.identity);
  }

  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }

  private async rotate(): Promise<void> {
    const key = await generateKey();
    const issued = await this.ca.certify(key.keys.publicKey, this.subject, this.ttlMs, this.names);
    this.identity = { certificate: Buffer.from(this.ca.servingChain(issued)), privateKey: Buffer.from(key.keyPem) };
    this.notAfter = issued.notAfter;
    for (const l of this.identityListeners) l(this.identity);
    this.schedule(Math.max(1000, (issued.notAfter.getTime() - Date.now()) * RENEW_AT));
    this.log.info({ notAfter: issued.notAfter.toISOString(), dns: this.names.dns, ips: this.names.ips }, 'control plane serving certificate issued');
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.rotate().catch((err: unknown) => {
        this.log.error({ error: errorMessage(err), retryInMs: RETRY_MS }, 'renewing the serving certificate failed');
        this.schedule(RETRY_MS);
      });
    }, delayMs);
  }
}
