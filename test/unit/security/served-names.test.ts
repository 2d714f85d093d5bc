import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ValidationError } from '../../../src/errors';
import { hostOfHeader, isLoopbackName, parseSan, servedNames } from '../../../src/security/served-names';

const facts = { hostname: 'gw1', interfaceAddresses: ['127.0.0.1', '::1', '10.0.0.5', 'fe80::1'] };

describe('security/served-names', () => {
  it('names a loopback listener by its address, localhost, 127.0.0.1, ::1 and the host name', () => {
    assert.deepEqual(servedNames('127.0.0.1', [], facts), { dns: ['localhost', 'gw1'], ips: ['127.0.0.1', '::1'] });
  });

  it('names a wildcard listener by every interface address too, and adds --san values', () => {
    const n = servedNames('0.0.0.0', ['cp.example.test', '192.0.2.7', 'CP2.Example.Test.'], facts);
    assert.deepEqual(n.ips, ['127.0.0.1', '::1', '10.0.0.5', 'fe80::1', '192.0.2.7']);
    assert.deepEqual(n.dns, ['localhost', 'gw1', 'cp.example.test', 'cp2.example.test']);
  });

  it('names a listener on another address by that address only (and the host name)', () => {
    assert.deepEqual(servedNames('10.0.0.5', [], facts), { dns: ['gw1'], ips: ['10.0.0.5'] });
  });

  it('skips a host name that is no DNS name rather than certifying it', () => {
    assert.deepEqual(servedNames('10.0.0.5', [], { hostname: 'my_box', interfaceAddresses: [] }).dns, []);
  });

  it('refuses a --san that is neither an IP address nor a DNS name, naming the flag', () => {
    for (const bad of ['', ' ', 'a b', 'x..y', '-a.example', 'a'.repeat(64), 'http://x', 'host:1', '1.2.3.4/8', 'é.example', `${'a.'.repeat(127)}aa`]) {
      assert.throws(() => parseSan(bad, '--san'), (err: unknown) => err instanceof ValidationError && err.message.startsWith('--san: '), bad);
    }
  });

  it('reads any string as a SAN or a ValidationError, never anything else (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          const san = parseSan(s, '--san');
          assert.ok(san.kind === 'ip' || /^[a-z0-9*.-]+$/.test(san.value));
        } catch (err) {
          assert.ok(err instanceof ValidationError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reads a Host: header as a browser resolves it', () => {
    assert.equal(hostOfHeader('LOCALHOST:15000'), 'localhost');
    assert.equal(hostOfHeader('[0:0:0:0:0:0:0:1]:15000'), '::1');
    assert.equal(hostOfHeader('2130706433'), '127.0.0.1');
    assert.equal(hostOfHeader('evil.example.'), 'evil.example');
    for (const bad of ['', 'a b', 'user@host', 'host/path', '[::1', 'host?x']) assert.equal(hostOfHeader(bad), undefined, bad);
  });

  it('knows loopback names', () => {
    for (const h of ['localhost', '127.0.0.1', '127.9.9.9', '::1']) assert.ok(isLoopbackName(h), h);
    for (const h of ['10.0.0.1', 'localhost.evil.example', '::', '0.0.0.0']) assert.ok(!isLoopbackName(h), h);
  });
});
