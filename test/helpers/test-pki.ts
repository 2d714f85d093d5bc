import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { DEFAULT_TRUST_DOMAIN, formatSpiffeId, type SpiffeId } from '../../src/security/spiffe-id';
import type { TlsIdentity, TlsMaterial } from '../../src/security/tls-identity';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type KeyPair = webcrypto.CryptoKeyPair;

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR = 3600_000;

export interface LeafOptions {
  kind?: SpiffeId['kind'];
  trustDomain?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Hex; random when not given. */
  serialNumber?: string;
  /** URI SANs instead of the one SPIFFE ID (none, several, foreign ones). */
  uris?: string[];
  /** IP address SANs, for a server a client dials by address (a fake Kubernetes API server on 127.0.0.1). */
  ips?: string[];
}

function pemKey(pkcs8: ArrayBuffer): string {
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

let serial = 0x1000;
function nextSerial(): string {
  serial += 1;
  return `01${Date.now().toString(16)}${serial.toString(16).padStart(6, '0')}`;
}

/**
 * A certificate authority for tests: ECDSA P-256, issuing leaves whose URI SAN is a SPIFFE ID
 * (serverAuth + clientAuth), as the control plane's CA does; also expired leaves, leaves of other
 * kinds and, from another TestCa, certificates no peer should trust.
 */
export class TestCa {
  private constructor(
    readonly certPem: string,
    private readonly keys: KeyPair,
    readonly name: string,
  ) {}

  static async create(name = 'devicemesh test CA'): Promise<TestCa> {
    const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as KeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: nextSerial(),
      name: `CN=${name}`,
      notBefore: new Date(Date.now() - HOUR),
      notAfter: new Date(Date.now() + 24 * HOUR),
      signingAlgorithm: SIGNING,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    return new TestCa(cert.toString('pem'), keys, name);
  }

  /** A leaf for `id` (a workload unless `kind` says otherwise), valid from an hour ago for a day. */
  async issue(id: string, options: LeafOptions = {}): Promise<TlsMaterial> {
    const identity: SpiffeId = { trustDomain: options.trustDomain ?? DEFAULT_TRUST_DOMAIN, kind: options.kind ?? 'workload', id };
    const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as KeyPair;
    const notAfter = options.notAfter ?? new Date(Date.now() + 24 * HOUR);
    const uris = options.uris ?? [formatSpiffeId(identity)];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: options.serialNumber ?? nextSerial(),
      subject: `CN=${id}`,
      issuer: `CN=${this.name}`,
      notBefore: options.notBefore ?? new Date(Date.now() - HOUR),
      notAfter,
      signingAlgorithm: SIGNING,
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...uris.map((value) => ({ type: 'url' as const, value })),
          ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
        ]),
      ],
    });
    const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    return { key: pemKey(pkcs8), cert: cert.toString('pem'), ca: this.certPem, identity, notAfter };
  }

  /** A leaf that expired an hour ago. */
  issueExpired(id: string, options: LeafOptions = {}): Promise<TlsMaterial> {
    return this.issue(id, { ...options, notBefore: new Date(Date.now() - 48 * HOUR), notAfter: new Date(Date.now() - HOUR) });
  }
}

/** Credentials a test rotates by hand, as the identity helper's renewal does. */
export class RotatingTlsIdentity implements TlsIdentity {
  private readonly listeners = new Set<(m: TlsMaterial) => void>();

  constructor(private material: TlsMaterial) {}

  current(): TlsMaterial {
    return this.material;
  }

  onRotate(listener: (material: TlsMaterial) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  rotate(material: TlsMaterial): void {
    this.material = material;
    for (const l of this.listeners) l(material);
  }
}

/** The serial number of a PEM certificate (the leaf, first in the chain), upper-case hex as node:crypto gives it. */
export function serialOf(certPem: string): string {
  return new X509Certificate(certPem).serialNumber.toUpperCase();
}
