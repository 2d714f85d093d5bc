import { randomBytes } from 'node:crypto';
import { NotFoundError } from '../../src/errors';
import { BootstrapTokens, parseToken, type TokenRecord, type TokenSubject, type TokenTerms } from './bootstrap-tokens';
import type { CertificateAuthority, IssuedCertificate } from './certificate-authority';
import { type CertificateRecord, IssuedCertificates, type Revocation } from './issued-certificates';
import { RecordFile } from './record-file';

/**
 * The bootstrap tokens of a control plane and the member certificates they led to, kept in its
 * data directory (`tokens.json`, `certificates.json`). Revoking (an identity, or a token's
 * descendants) tells the listeners, which close what the revoked certificates hold open.
 */
export class IdentityRegistry {
  private readonly tokens: BootstrapTokens;
  private readonly certificates: IssuedCertificates;
  private readonly tokenFile: RecordFile<TokenRecord>;
  private readonly certificateFile: RecordFile<CertificateRecord>;
  private readonly listeners = new Set<(serials: ReadonlySet<string>) => void>();

  constructor(
    dataDir: string,
    private readonly ca: CertificateAuthority,
    now: () => number = Date.now,
  ) {
    this.tokenFile = new RecordFile(dataDir, 'tokens.json', 'tokens');
    this.certificateFile = new RecordFile(dataDir, 'certificates.json', 'certificates');
    this.tokens = new BootstrapTokens(this.tokenFile.load(), now, randomBytes);
    this.certificates = new IssuedCertificates(this.certificateFile.load(), now);
  }

  createToken(subject: TokenSubject, terms: TokenTerms): { token: string; record: TokenRecord } {
    this.tokens.expire();
    const made = this.tokens.create(subject, terms, this.ca.digest());
    this.tokenFile.save(this.tokens.records());
    return made;
  }

  listTokens(): TokenRecord[] {
    if (this.tokens.expire()) this.tokenFile.save(this.tokens.records());
    return this.tokens.records();
  }

  /** Deletes the token and revokes every certificate that descends from a join with it. */
  deleteToken(id: string): Revocation {
    if (!this.tokens.delete(id)) throw new NotFoundError(`token ${id} does not exist`);
    this.tokenFile.save(this.tokens.records());
    return this.revoked(this.certificates.revokeToken(id));
  }

  /** Redeems the token (a single-use one is used up even if issuing fails: no retry can replay it) and records the certificate issued. */
  async join(tokenText: string, issue: (subject: TokenSubject) => Promise<IssuedCertificate>): Promise<IssuedCertificate> {
    const record = this.tokens.redeem(parseToken(tokenText), this.ca.digest());
    if (record.usedAt !== undefined) this.tokenFile.save(this.tokens.records());
    const cert = await issue(record.subject);
    this.certificates.joined(cert.serial, record, cert.notAfter.getTime());
    this.certificateFile.save(this.certificates.records());
    return cert;
  }

  /** A renewal by the holder of `previous`; refused when that certificate is revoked. */
  async renew(previous: string, issue: () => Promise<IssuedCertificate>): Promise<IssuedCertificate> {
    this.certificates.check(previous);
    const cert = await issue();
    this.certificates.renewed(previous, cert.serial, cert.notAfter.getTime());
    this.certificateFile.save(this.certificates.records());
    return cert;
  }

  revoke(subject: TokenSubject): Revocation {
    return this.revoked(this.certificates.revokeSubject(subject));
  }

  /** UnauthenticatedError when the certificate is revoked. */
  check(serial: string): void {
    this.certificates.check(serial);
  }

  allowedAddresses(serial: string): readonly string[] {
    return this.certificates.allowedAddresses(serial);
  }

  lineage(serial: string): string | undefined {
    return this.certificates.lineage(serial);
  }

  revokedSerials(): ReadonlySet<string> {
    return new Set(this.certificates.revokedSerials());
  }

  /** Called with the revoked serials after each revocation; returns the unsubscribe. */
  onRevoked(listener: (serials: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private revoked(revocation: Revocation): Revocation {
    this.certificateFile.save(this.certificates.records());
    if (revocation.certificates > 0) {
      const serials = this.revokedSerials();
      for (const listener of this.listeners) listener(serials);
    }
    return revocation;
  }
}
