import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage, UnavailableError, ValidationError } from '../../src/errors';
import type { ServedNames } from '../../src/security/served-names';
import { formatSpiffeId, type SpiffeId } from '../../src/security/spiffe-id';
import {
  certificateDigest,
  type CryptoKey,
  type CryptoKeyPair,
  type SigningAlgorithm,
  EC_ALGORITHM,
  EC_SIGNING,
  importSigningKey,
  isSelfSigned,
  splitCertificates,
  toPem,
  x509,
} from '../../src/security/x509';

/** A leaf as handed out: the chain to present, the bundle to trust. */
export interface IssuedCertificate {
  /** Leaf first, then the intermediates up to (not including) a self-signed root. */
  certChainPem: string;
  caPem: string;
  identity: SpiffeId;
  notAfter: Date;
  /** The leaf's serial number, upper-case hex as OpenSSL prints it. */
  serial: string;
}

export interface CaFiles {
  /** The CA certificate, optionally followed by its chain (an intermediate's issuers up to the root). */
  certFile: string;
  keyFile: string;
}

/** Certificates are valid from a little earlier than issued: peers' clocks differ. */
const BACKDATE_MS = 60_000;
const OWN_CA_LIFETIME_MS = 10 * 365 * 24 * 3600_000;

/**
 * The mesh's certificate authority (as istiod's): signs leaves whose only name is the SPIFFE ID
 * the control plane decided, never one from the request. Clock injected for tests.
 */
export class CertificateAuthority {
  /** The CA certificate that signs leaves: the root when we made it, else the given one (maybe an intermediate). */
  readonly certificate: X509Certificate;
  /** Its chain above it, as the file gave it. */
  private readonly chain: X509Certificate[];

  private constructor(
    certs: X509Certificate[],
    private readonly key: CryptoKey,
    private readonly signing: SigningAlgorithm,
    readonly trustDomain: string,
    private readonly now: () => number,
  ) {
    this.certificate = certs[0] as X509Certificate;
    this.chain = certs.slice(1);
  }

  /** From PEM text: the CA certificate (then its chain) and its private key. */
  static async fromPem(certPem: string, keyPem: string, trustDomain: string, now: () => number = Date.now): Promise<CertificateAuthority> {
    const certs = splitCertificates(certPem, '--ca-cert');
    const { key, signing } = await importSigningKey(keyPem, '--ca-key');
    const ca = certs[0] as X509Certificate;
    if (!ca.ca) throw new ValidationError('--ca-cert', `${ca.subject.replace(/\n/g, ', ')} is not a CA certificate (basicConstraints CA:FALSE)`);
    if (!ca.checkPrivateKey(createPrivateKey(keyPem))) throw new ValidationError('--ca-key', 'is not the private key of --ca-cert');
    if (now() > Date.parse(ca.validTo)) throw new ValidationError('--ca-cert', `expired at ${new Date(ca.validTo).toISOString()}`);
    return new CertificateAuthority(certs, key, signing, trustDomain, now);
  }

  /** A new self-signed P-256 CA for the trust domain, as PEM. */
  static async create(trustDomain: string, now: () => number = Date.now): Promise<{ certPem: string; keyPem: string }> {
    const keys = (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
    const t = now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=devicemesh CA ${trustDomain}, O=devicemesh`,
      notBefore: new Date(t - BACKDATE_MS),
      notAfter: new Date(t + OWN_CA_LIFETIME_MS),
      keys,
      signingAlgorithm: EC_SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
      ],
    });
    const keyDer = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    return { certPem: cert.toString('pem') + '\n', keyPem: x509.PemConverter.encode(keyDer, 'PRIVATE KEY') + '\n' };
  }

  /** SHA-256 of the signing CA certificate's DER: what join tokens pin. */
  digest(): string {
    return certificateDigest(this.certificate);
  }

  /** What peers trust: the CA certificate and its chain (a root is needed to verify with Node's TLS). */
  bundlePem(): string {
    return toPem([this.certificate, ...this.chain]);
  }

  /** Certificates presented after a leaf: the CA and its intermediates; the root too, so a joining client can find its pin in the chain. */
  private presentedChain(): X509Certificate[] {
    return [this.certificate, ...this.chain];
  }

  /**
   * Certifies the key of a PKCS#10 request as `identity` until `ttlMs` from now (never past the
   * CA's own expiry). The request's names and extensions are ignored.
   */
  async issue(csrPem: string, identity: SpiffeId, ttlMs: number): Promise<IssuedCertificate> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new ValidationError('ttl', `${ttlMs} ms is not a positive duration`);
    const csr = parseCsr(csrPem);
    if (!(await csr.verify())) throw new ValidationError('csr_pem', 'the request\'s signature does not match its key');
    const publicKey = await csr.publicKey.export();
    return this.certify(publicKey, identity, ttlMs);
  }

  /**
   * Certifies an existing public key (the control plane's own serving key). `names` adds DNS and
   * IP SANs beside the SPIFFE ID, so that clients checking a host name (grpcurl, curl, grpcio)
   * can verify a server; members' leaves have none.
   */
  async certify(publicKey: CryptoKey, identity: SpiffeId, ttlMs: number, names: ServedNames = { dns: [], ips: [] }): Promise<IssuedCertificate> {
    const t = this.now();
    const notAfter = new Date(Math.min(t + ttlMs, Date.parse(this.certificate.validTo)));
    const caCert = new x509.X509Certificate(this.certificate.raw);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `O=devicemesh, OU=${identity.kind}`,
      issuer: caCert.subject,
      notBefore: new Date(t - BACKDATE_MS),
      notAfter,
      publicKey,
      signingKey: this.key,
      signingAlgorithm: this.signing,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(
          [
            { type: 'url', value: formatSpiffeId(identity) },
            ...names.dns.map((value) => ({ type: 'dns' as const, value })),
            ...names.ips.map((value) => ({ type: 'ip' as const, value })),
          ],
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ],
    });
    const issued = new X509Certificate(leaf.toString('pem'));
    const chain = [issued, ...this.presentedChain().filter((c) => !isSelfSigned(c))];
    return { certChainPem: toPem(chain), caPem: this.bundlePem(), identity, notAfter, serial: issued.serialNumber.toUpperCase() };
  }

  /** The chain a server presents: leaf, intermediates and the root, so that a joining client finds its pinned CA. */
  servingChain(issued: IssuedCertificate): string {
    const leaf = splitCertificates(issued.certChainPem, 'certificate')[0] as X509Certificate;
    return toPem([leaf, ...this.presentedChain()]);
  }
}

function serial(): string {
  // Positive, 16 random bytes (RFC 5280 allows up to 20).
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new ValidationError('csr_pem', 'is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)');
  }
  try {
    return new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    throw new ValidationError('csr_pem', `does not parse as PKCS#10: ${errorMessage(err)}`);
  }
}

/**
 * The CA of a data directory: `--ca-cert`/`--ca-key` when given, else `<dataDir>/ca/ca.crt` and
 * `ca.key` (0600), created on first start.
 */
export async function openCertificateAuthority(options: {
  dataDir: string;
  trustDomain: string;
  external?: CaFiles;
  now?: () => number;
}): Promise<{ ca: CertificateAuthority; certFile: string; created: boolean }> {
  const now = options.now ?? Date.now;
  if (options.external) {
    const { certFile, keyFile } = options.external;
    const certPem = readText(certFile, '--ca-cert');
    const keyPem = readText(keyFile, '--ca-key');
    return { ca: await CertificateAuthority.fromPem(certPem, keyPem, options.trustDomain, now), certFile, created: false };
  }
  const dir = path.join(options.dataDir, 'ca');
  const certFile = path.join(dir, 'ca.crt');
  const keyFile = path.join(dir, 'ca.key');
  let created = false;
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) {
    const made = await CertificateAuthority.create(options.trustDomain, now);
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeAtomic(keyFile, made.keyPem, 0o600);
      writeAtomic(certFile, made.certPem, 0o644);
    } catch (err) {
      throw new UnavailableError(`cannot write the CA to ${dir}: ${errorMessage(err)}`, { cause: err });
    }
    created = true;
  }
  const ca = await CertificateAuthority.fromPem(readText(certFile, 'CA certificate'), readText(keyFile, 'CA key'), options.trustDomain, now);
  return { ca, certFile, created };
}

function readText(file: string, field: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ValidationError(field, `cannot read ${file}: ${errorMessage(err)}`);
  }
}

/** Writes a whole file or nothing: a temporary file renamed over the old one. */
export function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}
