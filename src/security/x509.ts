import 'reflect-metadata';
import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { UnauthenticatedError, ValidationError } from '../errors';
import { formatSpiffeId, type SpiffeId } from './spiffe-id';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type SigningAlgorithm = webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;

/** Mesh keys: ECDSA P-256, signatures with SHA-256. */
export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const EC_SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface GeneratedKey {
  keys: CryptoKeyPair;
  /** PKCS#8 PEM of the private key. */
  keyPem: string;
}

export async function generateKey(): Promise<GeneratedKey> {
  const keys = (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { keys, keyPem: x509.PemConverter.encode(der, 'PRIVATE KEY') };
}

/** A PEM private key (PKCS#8, SEC1 or PKCS#1; EC or RSA) as a WebCrypto signing key, and the algorithm it signs with. */
export async function importSigningKey(pem: string, field: string): Promise<{ key: CryptoKey; signing: SigningAlgorithm }> {
  let der: Buffer;
  let type: string | undefined;
  let curve: string | undefined;
  try {
    const k = createPrivateKey(pem);
    type = k.asymmetricKeyType;
    curve = k.asymmetricKeyDetails?.namedCurve;
    der = k.export({ format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new ValidationError(field, `not a PEM private key: ${(err as Error).message}`);
  }
  if (type === 'ec') {
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : undefined;
    if (!namedCurve) throw new ValidationError(field, `EC curve ${curve ?? '?'} is not supported (P-256 or P-384)`);
    const key = await webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve }, false, ['sign']);
    return { key, signing: { name: 'ECDSA', hash: namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384' } };
  }
  if (type === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']), signing: algorithm };
  }
  throw new ValidationError(field, `${type ?? 'unknown'} keys are not supported (EC or RSA)`);
}

/** A PKCS#10 request for `keys`; its subject is informative only (the CA names the certificate). */
export async function createCsr(key: GeneratedKey, identity?: SpiffeId): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: identity ? `CN=${identity.kind}` : 'CN=devicemesh',
    keys: key.keys,
    signingAlgorithm: EC_SIGNING,
    extensions: identity ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: formatSpiffeId(identity) }])] : [],
  });
  return csr.toString('pem');
}

/** The certificates of a PEM bundle, in order; anything that is not one is a ValidationError. */
export function splitCertificates(pem: string, field: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new ValidationError(field, 'holds no PEM certificate');
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new ValidationError(field, `holds a certificate that does not parse: ${(err as Error).message}`);
    }
  });
}

/** SHA-256 of a certificate's DER, lower-case hex: what a join token pins. */
export function certificateDigest(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/**
 * Checks that `leaf` was signed by `issuer` and, when `now` is given, that both are valid then;
 * otherwise UnauthenticatedError saying why.
 */
export function checkIssuedBy(leaf: X509Certificate, issuer: X509Certificate, now?: number): void {
  if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) {
    throw new UnauthenticatedError('certificate was not issued by this mesh\'s CA');
  }
  if (now === undefined) return;
  for (const [what, c] of [['certificate', leaf], ['CA certificate', issuer]] as const) {
    if (now < Date.parse(c.validFrom)) throw new UnauthenticatedError(`${what} is not valid before ${new Date(c.validFrom).toISOString()}`);
    if (now > Date.parse(c.validTo)) throw new UnauthenticatedError(`${what} expired at ${new Date(c.validTo).toISOString()}`);
  }
}

export function toPem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString().trim()).join('\n') + '\n';
}
