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
} from '../../../control-plane/security/bootstrap-tokens';
import { UnauthenticatedError, ValidationError } from '../../../src/errors';

const CA = 'a'.repeat(64);
const OTHER_CA = 'b'.repeat(64);

describe('bootstrap tokens', () => {
  let t: number;
  let tokens: BootstrapTokens;
  beforeEach(() => {
    t = 1_700_000_000_000;
    tokens = new BootstrapTokens([], () => t, randomBytes);
  });

  it('creates a token that names one identity and verifies until it expires', () => {
    const { token, record } = tokens.create({ kind: 'host', id: 'gw1' }, 60_000, CA);
    const parsed = parseToken(token);
    assert.equal(parsed.caDigest, CA);
    assert.equal(parsed.id, record.id);
    assert.deepEqual(tokens.verify(parsed, CA), { kind: 'host', id: 'gw1' });
    // Reusable until expiry.
    assert.deepEqual(tokens.verify(parsed, CA), { kind: 'host', id: 'gw1' });
    t += 60_000;
    assert.throws(() => tokens.verify(parsed, CA), (e: unknown) => e instanceof UnauthenticatedError && /expired/.test(e.message));
  });

  it('stores only the hash of the secret', () => {
    const { token, record } = tokens.create({ kind: 'workload', id: 'app1' }, 60_000, CA);
    const { secret } = parseToken(token);
    assert.ok(!JSON.stringify(tokens.records()).includes(secret));
    assert.equal(record.secretSha256, sha256Hex(secret));
  });

  it('refuses a wrong secret, an unknown id and a token of another CA, saying which', () => {
    const { token } = tokens.create({ kind: 'host', id: 'gw1' }, 60_000, CA);
    const parsed = parseToken(token);
    const wrongSecret = { ...parsed, secret: parsed.secret.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) };
    assert.throws(() => tokens.verify(wrongSecret, CA), /wrong secret/);
    assert.throws(() => tokens.verify({ ...parsed, id: 'zzzzzzzzzzzz' }, CA), /unknown/);
    assert.throws(() => tokens.verify({ ...parsed, caDigest: OTHER_CA }, CA), /another CA/);
  });

  it('expires and deletes tokens', () => {
    const a = tokens.create({ kind: 'host', id: 'gw1' }, 1000, CA);
    const b = tokens.create({ kind: 'host', id: 'gw2' }, 5000, CA);
    t += 2000;
    assert.equal(tokens.expire(), true);
    assert.deepEqual(tokens.records().map((r) => r.id), [b.record.id]);
    assert.equal(tokens.delete(a.record.id), false);
    assert.equal(tokens.delete(b.record.id), true);
    assert.deepEqual(tokens.records(), []);
  });

  it('reloads records (as from the store) and still verifies', () => {
    const { token } = tokens.create({ kind: 'workload', id: 'app-1' }, 60_000, CA);
    const again = new BootstrapTokens(JSON.parse(JSON.stringify(tokens.records())), () => t, randomBytes);
    assert.deepEqual(again.verify(parseToken(token), CA), { kind: 'workload', id: 'app-1' });
  });

  it('refuses bad subjects and durations with a ValidationError', () => {
    assert.throws(() => tokens.create({ kind: 'host', id: 'a/b' }, 1000, CA), ValidationError);
    assert.throws(() => tokens.create({ kind: 'operator' as 'host', id: 'x' }, 1000, CA), ValidationError);
    assert.throws(() => tokens.create({ kind: 'host', id: 'gw1' }, 0, CA), ValidationError);
    assert.throws(() => tokens.create({ kind: 'host', id: 'gw1' }, Number.NaN, CA), ValidationError);
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
