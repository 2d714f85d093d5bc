import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { accountId, parseGetentId } from '../../../src/util/account-ids';
import { NotFoundError, ProtocolError } from '../../../src/errors';

describe('account ids: owner and group of a pty or a one-hop socket', () => {
  it('reads the id out of a getent passwd or group line', () => {
    assert.equal(parseGetentId('root:x:0:0:root:/root:/bin/bash\n', 'root'), 0);
    assert.equal(parseGetentId('dialout:x:20:alice,bob', 'dialout'), 20);
    assert.equal(parseGetentId('svc:*:4294967294:', 'svc'), 4294967294);
  });

  it('refuses a line that is not name:password:id:… for the asked name', () => {
    const bad = ['', 'root', 'root:x', 'root:x::0', 'root:x:-1:0', 'root:x:zero:0', 'root:x:12345678901:0', 'admin:x:0:0', 'root :x:0:0', 'root:x:1.5:0'];
    for (const line of bad) {
      assert.throws(() => parseGetentId(line, 'root'), (e: unknown) => e instanceof ProtocolError && /not name:x:id/.test(e.message), JSON.stringify(line));
    }
  });

  it('quotes at most 80 characters of a bad line', () => {
    assert.throws(() => parseGetentId('y'.repeat(5000), 'root'), (e: unknown) => e instanceof ProtocolError && e.message.length < 200);
  });

  it('any line either gives a decimal id of at most 10 digits, or a ProtocolError (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.stringMatching(/^[a-z_][a-z0-9_-]{0,8}$/), (line, name) => {
        try {
          const id = parseGetentId(line, name);
          assert.ok(Number.isInteger(id) && id >= 0 && id < 1e10);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
        }
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z_][a-z0-9_-]{0,8}$/), fc.integer({ min: 0, max: 0xffffffff }), (name, id) => {
        assert.equal(parseGetentId(`${name}:x:${id}:${id}::/:/bin/sh`, name), id);
      }),
    );
  });

  it('asks the system’s accounts (getent) for a name, takes a number as it is, and leaves an empty one to the sidecar', async () => {
    assert.equal(await accountId('passwd', 'root'), 0);
    assert.equal(await accountId('group', 'root'), 0);
    assert.equal(await accountId('passwd', '1234'), 1234);
    assert.equal(await accountId('group', ''), undefined);
    assert.equal(await accountId('passwd', undefined), undefined);
    await assert.rejects(accountId('passwd', 'no-such-user-dm'), (e: unknown) => e instanceof NotFoundError && /no user named no-such-user-dm/.test(e.message));
    await assert.rejects(accountId('group', 'no-such-group-dm'), (e: unknown) => e instanceof NotFoundError && /no group named/.test(e.message));
  });
});
