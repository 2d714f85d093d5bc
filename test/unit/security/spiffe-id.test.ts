import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { CertificateAuthority } from '../../../control-plane/security/certificate-authority';
import { UnauthenticatedError, ValidationError } from '../../../src/errors';
import { spiffeServerCheck } from '../../../src/security/control-plane-identity';
import { formatSpiffeId, parseSpiffeId, spiffeIdOfCertificate, type SpiffeId } from '../../../src/security/spiffe-id';
import { createCsr, generateKey, splitCertificates } from '../../../src/security/x509';

describe('SPIFFE IDs', () => {
  it('parses the forms devicemesh uses', () => {
    assert.deepEqual(parseSpiffeId('spiffe://devicemesh.local/host/gw1'), { trustDomain: 'devicemesh.local', kind: 'host', id: 'gw1' });
    assert.deepEqual(parseSpiffeId('spiffe://td/workload/app-1'), { trustDomain: 'td', kind: 'workload', id: 'app-1' });
    assert.deepEqual(parseSpiffeId('spiffe://td/control-plane'), { trustDomain: 'td', kind: 'control-plane', id: '' });
  });

  it('refuses anything else with a ValidationError', () => {
    for (const bad of ['', 'http://td/host/gw1', 'spiffe://TD/host/gw1', 'spiffe://td/host', 'spiffe://td/host/a/b', 'spiffe://td/pod/x', 'spiffe://td/host/a b']) {
      assert.throws(() => parseSpiffeId(bad), ValidationError, bad);
    }
  });

  it('formats what it parses, and parses what it formats (property)', () => {
    const id: fc.Arbitrary<SpiffeId> = fc.record({
      trustDomain: fc.stringMatching(/^[a-z0-9._-]{1,40}$/),
      kind: fc.constantFrom('host' as const, 'workload' as const, 'operator' as const),
      id: fc.stringMatching(/^[A-Za-z0-9._~-]{1,64}$/),
    });
    fc.assert(fc.property(id, (s) => assert.deepEqual(parseSpiffeId(formatSpiffeId(s)), { ...s })));
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (text) => {
        try {
          parseSpiffeId(text);
        } catch (err) {
          assert.ok(err instanceof ValidationError);
        }
      }),
    );
  });

  it('reads the one SPIFFE ID of a certificate the CA issued, and checks a server by it', async function () {
    this.timeout(10_000);
    const made = await CertificateAuthority.create('td');
    const ca = await CertificateAuthority.fromPem(made.certPem, made.keyPem, 'td');
    const cpId: SpiffeId = { trustDomain: 'td', kind: 'control-plane', id: '' };
    const issued = await ca.issue(await createCsr(await generateKey()), cpId, 60_000);
    const leaf = splitCertificates(issued.certChainPem, 'chain')[0] as X509Certificate;
    assert.deepEqual(spiffeIdOfCertificate(leaf), cpId);
    const peer = { subjectaltname: leaf.subjectAltName ?? '' } as Parameters<ReturnType<typeof spiffeServerCheck>>[1];
    assert.equal(spiffeServerCheck(cpId)('127.0.0.1', peer), undefined);
    assert.equal(spiffeServerCheck({ kind: 'control-plane' })('10.0.0.1', peer), undefined);
    assert.ok(spiffeServerCheck({ trustDomain: 'other', kind: 'control-plane', id: '' })('x', peer) instanceof UnauthenticatedError);
    assert.ok(spiffeServerCheck({ trustDomain: 'td', kind: 'host', id: 'gw1' })('x', peer) instanceof UnauthenticatedError);
    // The CA certificate itself names the trust domain only: not a devicemesh identity.
    assert.throws(() => spiffeIdOfCertificate(new X509Certificate(made.certPem)), UnauthenticatedError);
  });
});
