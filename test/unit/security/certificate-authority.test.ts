import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CertificateAuthority, openCertificateAuthority } from '../../../control-plane/security/certificate-authority';
import { UnauthenticatedError, ValidationError } from '../../../src/errors';
import { spiffeIdOfCertificate } from '../../../src/security/spiffe-id';
import { checkIssuedBy, createCsr, EC_SIGNING, generateKey, splitCertificates, x509 } from '../../../src/security/x509';

const TD = 'test.mesh';

async function makeCa(now: () => number = Date.now): Promise<CertificateAuthority> {
  const { certPem, keyPem } = await CertificateAuthority.create(TD, now);
  return CertificateAuthority.fromPem(certPem, keyPem, TD, now);
}

describe('certificate authority', function () {
  this.timeout(20_000);

  it('issues a leaf for the CSR\'s key with our SPIFFE ID only, whatever the CSR names', async () => {
    const ca = await makeCa();
    const key = await generateKey();
    // The CSR claims to be the control plane: ignored.
    const csr = await createCsr(key, { trustDomain: TD, kind: 'control-plane', id: '' });
    const issued = await ca.issue(csr, { trustDomain: TD, kind: 'host', id: 'gw1' }, 60_000);
    const leaf = splitCertificates(issued.certChainPem, 'chain')[0] as X509Certificate;
    assert.deepEqual(spiffeIdOfCertificate(leaf), { trustDomain: TD, kind: 'host', id: 'gw1' });
    assert.equal(leaf.subjectAltName, 'URI:spiffe://test.mesh/host/gw1');
    assert.ok(leaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(key.keyPem)));
    assert.equal(leaf.ca, false);
    checkIssuedBy(leaf, ca.certificate, Date.now());
    assert.ok(Math.abs(Date.parse(leaf.validTo) - (Date.now() + 60_000)) < 5000);
  });

  it('with an injected clock: a certificate issued in the past has expired', async () => {
    const past = Date.now() - 3600_000;
    const ca = await makeCa(() => past);
    const key = await generateKey();
    const issued = await ca.issue(await createCsr(key), { trustDomain: TD, kind: 'workload', id: 'app1' }, 60_000);
    const leaf = splitCertificates(issued.certChainPem, 'chain')[0] as X509Certificate;
    checkIssuedBy(leaf, ca.certificate, past + 1000);
    assert.throws(() => checkIssuedBy(leaf, ca.certificate, Date.now()), (e: unknown) => e instanceof UnauthenticatedError && /expired/.test(e.message));
  });

  it('refuses a certificate of another CA', async () => {
    const ours = await makeCa();
    const theirs = await makeCa();
    const issued = await theirs.issue(await createCsr(await generateKey()), { trustDomain: TD, kind: 'host', id: 'gw1' }, 60_000);
    const leaf = splitCertificates(issued.certChainPem, 'chain')[0] as X509Certificate;
    assert.throws(() => checkIssuedBy(leaf, ours.certificate, Date.now()), /not issued by this mesh's CA/);
  });

  it('answers malformed CSRs with a ValidationError', async () => {
    const ca = await makeCa();
    const id = { trustDomain: TD, kind: 'host' as const, id: 'gw1' };
    await assert.rejects(ca.issue('hello', id, 1000), ValidationError);
    await assert.rejects(ca.issue('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', id, 1000), ValidationError);
    const good = await createCsr(await generateKey());
    // One byte of the signature changed: the request no longer proves its key.
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] as number) ^ 1;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await assert.rejects(ca.issue(tampered, id, 1000), ValidationError);
    await assert.rejects(ca.issue(good, id, 0), ValidationError);
  });

  it('creates its CA files on first start (key 0600) and loads them afterwards', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-ca-'));
    try {
      const first = await openCertificateAuthority({ dataDir: dir, trustDomain: TD });
      assert.equal(first.created, true);
      assert.equal(fs.statSync(path.join(dir, 'ca', 'ca.key')).mode & 0o777, 0o600);
      const second = await openCertificateAuthority({ dataDir: dir, trustDomain: TD });
      assert.equal(second.created, false);
      assert.equal(second.ca.digest(), first.ca.digest());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a CA key that is not the certificate\'s, and a leaf as a CA', async () => {
    const a = await CertificateAuthority.create(TD);
    const b = await CertificateAuthority.create(TD);
    await assert.rejects(CertificateAuthority.fromPem(a.certPem, b.keyPem, TD), /not the private key/);
    const ca = await CertificateAuthority.fromPem(a.certPem, a.keyPem, TD);
    const key = await generateKey();
    const leaf = await ca.issue(await createCsr(key), { trustDomain: TD, kind: 'host', id: 'x' }, 60_000);
    await assert.rejects(CertificateAuthority.fromPem(leaf.certChainPem, key.keyPem, TD), /not a CA certificate/);
  });

  it('works as an intermediate of an external root: the chain and the bundle carry the root', async () => {
    // An intermediate CA certificate signed by an external root.
    const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const rootDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-root-'));
    try {
      const made = await CertificateAuthority.create('root.example');
      const rootSigning = await crypto.subtle.importKey(
        'pkcs8',
        Buffer.from(made.keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64'),
        { name: 'ECDSA', namedCurve: 'P-256' },
        false,
        ['sign'],
      );
      const madeRoot = new x509.X509Certificate(made.certPem);
      const intermediate = await x509.X509CertificateGenerator.create({
        subject: 'CN=devicemesh intermediate',
        issuer: madeRoot.subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 24 * 3600_000),
        publicKey: keys.publicKey,
        signingKey: rootSigning,
        signingAlgorithm: EC_SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
          await x509.AuthorityKeyIdentifierExtension.create(madeRoot),
        ],
      });
      const intKeyPem = x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
      const certFile = path.join(rootDir, 'int.crt');
      const keyFile = path.join(rootDir, 'int.key');
      fs.writeFileSync(certFile, intermediate.toString('pem') + '\n' + made.certPem);
      fs.writeFileSync(keyFile, intKeyPem);
      const { ca } = await openCertificateAuthority({ dataDir: rootDir, trustDomain: TD, external: { certFile, keyFile } });
      const issued = await ca.issue(await createCsr(await generateKey()), { trustDomain: TD, kind: 'workload', id: 'app1' }, 60_000);
      const chain = splitCertificates(issued.certChainPem, 'chain');
      assert.equal(chain.length, 2, 'leaf and intermediate');
      assert.equal(splitCertificates(issued.caPem, 'bundle').length, 2, 'intermediate and root');
      assert.ok((chain[1] as X509Certificate).checkIssued(new X509Certificate(made.certPem)));
    } finally {
      fs.rmSync(rootDir, { recursive: true, force: true });
    }
  });
});
