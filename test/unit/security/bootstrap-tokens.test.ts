import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  BootstrapTokens,
  formatToken,
  parseToken,
  randomText,
  secretMatches,
  sha256Hex,
  type TokenRecord,
  type TokenSubject,
  type TokenTerms,
} from '../../../control-plane/security/bootstrap-tokens';
import { UnauthenticatedError, ValidationError } from '../../../src/errors';

const CA = 'a'.repeat(64);
const terms = (ttlMs: number, more: Partial<TokenTerms> = {}): TokenTerms => ({ ttlMs, reusable: true, allowedAddresses: [], ...more });
const subjectOf = (r: TokenRecord): TokenSubject => r.subject;
const OTHER_CA = 'b'.repeat(64);

describe('bootstrap tokens', () => {
  let t: number;
  let tokens: BootstrapTokens;
  beforeEach(() => {
    t = 1_700_000_000_000;
    tokens = new BootstrapTokens([], () => t, randomBytes);
  });

  it('creates a token that names one identity and verifies until it expires', () => {
    const { token, record } = tokens.create({ kind: 'host', id: 'gw1' }, terms(60_000), CA);
    const parsed = parseToken(token);
    assert.equal(parsed.caDigest, CA);
    assert.equal(parsed.id, record.id);
    assert.deepEqual(subjectOf(tokens.redeem(parsed, CA)), { kind: 'host', id: 'gw1' });
    // Reusable until expiry.
    assert.deepEqual(subjectOf(tokens.redeem(parsed, CA)), { kind: 'host', id: 'gw1' });
    t += 60_000;
    assert.throws(() => tokens.redeem(parsed, CA), (e: unknown) => e instanceof UnauthenticatedError && /expired/.test(e.message));
  });

  it('redeems a single-use token once, then refuses it saying when it was used', () => {
    const { token, record } = tokens.create({ kind: 'host', id: 'gw1' }, terms(60_000, { reusable: false }), CA);
    const parsed = parseToken(token);
    assert.equal(record.usedAt, undefined);
    assert.deepEqual(subjectOf(tokens.redeem(parsed, CA)), { kind: 'host', id: 'gw1' });
    assert.equal(tokens.records()[0]?.usedAt, t);
    t += 1000;
    assert.throws(
      () => tokens.redeem(parsed, CA),
      (e: unknown) => e instanceof UnauthenticatedError && /single-use and was used at 2023-11-14T22:13:20.000Z/.test(e.message) && /--reusable/.test(e.message),
    );
    // What a reload of tokens.json sees: still used.
    const again = new BootstrapTokens(JSON.parse(JSON.stringify(tokens.records())), () => t, randomBytes);
    assert.throws(() => again.redeem(parsed, CA), /single-use/);
  });

  it('pins host tokens to socket-plane addresses, refusing malformed ones and pins on workload tokens', () => {
    const { record } = tokens.create({ kind: 'host', id: 'gw1' }, terms(60_000, { allowedAddresses: ['10.0.0.5:15020', '[::1]:15020'] }), CA);
    assert.deepEqual(record.allowedAddresses, ['10.0.0.5:15020', '[::1]:15020']);
    for (const bad of ['10.0.0.5', ':15020', '10.0.0.5:99999', 'a b:1', '']) {
      assert.throws(() => tokens.create({ kind: 'host', id: 'gw1' }, terms(60_000, { allowedAddresses: [bad] }), CA), ValidationError, bad);
    }
    assert.throws(() => tokens.create({ kind: 'workload', id: 'app1' }, terms(60_000, { allowedAddresses: ['10.0.0.5:1'] }), CA), /only a host token/);
  });

  it('stores only the hash of the secret', () => {
    const { token, record } = tokens.create({ kind: 'workload', id: 'app1' }, terms(60_000), CA);
    const { secret } = parseToken(token);
    assert.ok(!JSON.stringify(tokens.records()).includes(secret));
    assert.equal(record.secretSha256, sha256Hex(secret));
  });

  it('refuses a wrong secret, an unknown id and a token of another CA, saying which', () => {
    const { token } = tokens.create({ kind: 'host', id: 'gw1' }, terms(60_000), CA);
    const parsed = parseToken(token);
    const wrongSecret = { ...parsed, secret: parsed.secret.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) };
    assert.throws(() => tokens.redeem(wrongSecret, CA), /wrong secret/);
    assert.throws(() => tokens.redeem({ ...parsed, id: 'zzzzzzzzzzzz' }, CA), /unknown/);
    assert.throws(() => tokens.redeem({ ...parsed, caDigest: OTHER_CA }, CA), /another CA/);
  });

  it('expires and deletes tokens', () => {
    const a = tokens.create({ kind: 'host', id: 'gw1' }, terms(1000), CA);
    const b = tokens.create({ kind: 'host', id: 'gw2' }, terms(5000), CA);
    t += 2000;
    assert.equal(tokens.expire(), true);
    assert.deepEqual(tokens.records().map((r) => r.id), [b.record.id]);
    assert.equal(tokens.delete(a.record.id), false);
    assert.equal(tokens.delete(b.record.id), true);
    assert.deepEqual(tokens.records(), []);
  });

  it('reloads records (as from the store) and still verifies', () => {
    const { token } = tokens.create({ kind: 'workload', id: 'app-1' }, terms(60_000), CA);
    const again = new BootstrapTokens(JSON.parse(JSON.stringify(tokens.records())), () => t, randomBytes);
    assert.deepEqual(subjectOf(again.redeem(parseToken(token), CA)), { kind: 'workload', id: 'app-1' });
  });

  it('refuses bad subjects and durations with a ValidationError', () => {
    assert.throws(() => tokens.create({ kind: 'host', id: 'a/b' }, terms(1000), CA), ValidationError);
    assert.throws(() => tokens.create({ kind: 'operator' as 'host', id: 'x' }, terms(1000), CA), ValidationError);
    assert.throws(() => tokens.create({ kind: 'host', id: 'gw1' }, terms(0), CA), ValidationError);
    assert.throws(() => tokens.create({ kind: 'host', id: 'gw1' }, terms(Number.NaN), CA), ValidationError);
  });

  it('compares secrets against hashes', () => {
    assert.equal(secretMatches('abc', sha256Hex('abc')), true);
    assert.equal(secretMatches('abd', sha256Hex('abc')), false);
    assert.equal(secretMatches('abc', 'not hex'), false);
  });

  it('makes random text of the alphabet only', () => {
    const text = randomText(1000, randomBytes);
    assert.equal(text.length, 1000);
    assert.match(text, /^[0-9a-z]+$/);
  });
});

describe('token parser (property)', () => {
  const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
  const id = fc.stringMatching(/^[0-9a-z]{12}$/);
  const secret = fc.stringMatching(/^[0-9a-z]{32}$/);

  it('parses what it formats', () => {
    fc.assert(
      fc.property(hex, id, secret, (caDigest, i, s) => {
        assert.deepEqual(parseToken(formatToken({ caDigest, id: i, secret: s })), { caDigest, id: i, secret: s });
      }),
    );
  });

  it('answers any other text with a ValidationError that does not echo it', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseToken(text);
        } catch (err) {
          assert.ok(err instanceof ValidationError);
          if (text.length > 8) assert.ok(!err.message.includes(text));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a valid token with any one character changed to one outside its alphabet', () => {
    fc.assert(
      fc.property(hex, id, secret, fc.nat(), fc.constantFrom('G', '/', ' ', '-', 'Z', '\u00e9'), (caDigest, i, s, at, bad) => {
        const text = formatToken({ caDigest, id: i, secret: s });
        const pos = 5 + (at % (text.length - 5));
        if (text[pos] === '-' && bad === '-') return;
        const mutated = text.slice(0, pos) + bad + text.slice(pos + 1);
        assert.throws(() => parseToken(mutated), ValidationError);
      }),
    );
  });
});
