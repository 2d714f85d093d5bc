import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { IssuedCertificates } from '../../../control-plane/security/issued-certificates';
import { NotFoundError, UnauthenticatedError, ValidationError } from '../../../src/errors';
import { parseIdentityArgument } from '../../../src/security/spiffe-id';

const HOUR = 3600_000;

describe('issued certificates: lineage, revocation, address pins', () => {
  let t: number;
  let certs: IssuedCertificates;
  const gw1 = { id: 'tok-gw1', subject: { kind: 'host' as const, id: 'gw1' }, allowedAddresses: ['10.0.0.5:15020'] };
  const app1 = { id: 'tok-app1', subject: { kind: 'workload' as const, id: 'app1' } };
  beforeEach(() => {
    t = 1_700_000_000_000;
    certs = new IssuedCertificates([], () => t);
  });

  it('keeps a join\'s lineage and pins through renewals, serials compared in any case', () => {
    certs.joined('0a1b', gw1, t + HOUR);
    certs.renewed('0A1B', '0c2d', t + 2 * HOUR);
    assert.equal(certs.lineage('0C2D'), '0A1B');
    assert.deepEqual(certs.allowedAddresses('0c2d'), ['10.0.0.5:15020']);
    assert.deepEqual(certs.allowedAddresses('ffff'), [], 'an unknown certificate pins nothing');
    assert.equal(certs.lineage('ffff'), undefined);
  });

  it('revokes an identity: every certificate of it, none of another, and says when there was none', () => {
    certs.joined('01', gw1, t + HOUR);
    certs.renewed('01', '02', t + HOUR);
    certs.joined('03', app1, t + HOUR);
    const r = certs.revokeSubject({ kind: 'host', id: 'gw1' });
    assert.equal(r.certificates, 2);
    assert.deepEqual(r.subjects, [{ kind: 'host', id: 'gw1' }]);
    assert.throws(() => certs.check('02'), (e: unknown) => e instanceof UnauthenticatedError && /02 of host\/gw1 is revoked/.test(e.message));
    certs.check('03');
    assert.deepEqual(certs.revokedSerials().sort(), ['01', '02']);
    assert.throws(() => certs.revokeSubject({ kind: 'host', id: 'gw1' }), NotFoundError);
    assert.throws(() => certs.renewed('01', '04', t + HOUR), UnauthenticatedError, 'a revoked certificate renews nothing');
  });

  it('revokes what descends from a token, and forgets certificates once expired', () => {
    certs.joined('01', app1, t + HOUR);
    certs.renewed('01', '02', t + 3 * HOUR);
    certs.joined('03', gw1, t + HOUR);
    assert.equal(certs.revokeToken('tok-app1').certificates, 2);
    certs.check('03');
    t += 2 * HOUR;
    assert.deepEqual(certs.revokedSerials(), ['02']);
    assert.equal(certs.expire(), true);
    assert.deepEqual(certs.records().map((r) => r.serial), ['02']);
    const reloaded = new IssuedCertificates(JSON.parse(JSON.stringify(certs.records())), () => t);
    assert.throws(() => reloaded.check('02'), UnauthenticatedError);
  });
});

describe('identity arguments (host/ID, workload/ID)', () => {
  it('parses both forms', () => {
    assert.deepEqual(parseIdentityArgument('host/gw1'), { kind: 'host', id: 'gw1' });
    assert.deepEqual(parseIdentityArgument('workload/app-1.x'), { kind: 'workload', id: 'app-1.x' });
  });

  it('answers anything else with a ValidationError', () => {
    for (const bad of ['gw1', 'host/', 'host/a/b', 'operator/x', 'control-plane', 'HOST/gw1', 'host/a b', '']) {
      assert.throws(() => parseIdentityArgument(bad), ValidationError, bad);
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          const parsed = parseIdentityArgument(text);
          assert.equal(`${parsed.kind}/${parsed.id}`, text);
        } catch (err) {
          assert.ok(err instanceof ValidationError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
