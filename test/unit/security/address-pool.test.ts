import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { AddressPool } from '../../../src/security/address-pool';

describe('security/address-pool', () => {
  it('keeps items oldest first, in all and per address', () => {
    const pool = new AddressPool<string>();
    pool.add('10.0.0.1:1', '10.0.0.1', 'a1');
    pool.add('10.0.0.2:1', '10.0.0.2', 'b1');
    pool.add('10.0.0.1:2', '10.0.0.1', 'a2');
    assert.equal(pool.oldest(), 'a1');
    assert.equal(pool.oldest('10.0.0.2'), 'b1');
    assert.deepEqual([pool.size(), pool.size('10.0.0.1'), pool.size('10.0.0.9')], [3, 2, 0]);
    assert.equal(pool.delete('10.0.0.1:1'), 'a1');
    assert.equal(pool.delete('10.0.0.1:1'), undefined, 'a second delete finds nothing');
    assert.equal(pool.oldest(), 'b1');
    assert.equal(pool.oldest('10.0.0.1'), 'a2');
    assert.equal(pool.oldest('10.0.0.9'), undefined);
    assert.deepEqual(pool.values(), ['b1', 'a2']);
  });

  it('agrees with a list model under any sequence of adds and deletes', () => {
    const op = fc.oneof(
      fc.record({ add: fc.constant(true), port: fc.integer({ min: 1, max: 20 }), host: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ add: fc.constant(false), port: fc.integer({ min: 1, max: 20 }), host: fc.integer({ min: 1, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const pool = new AddressPool<string>();
        let model: Array<{ key: string; address: string }> = [];
        for (const { add, port, host } of ops) {
          const address = `10.0.0.${host}`;
          const key = `${address}:${port}`;
          if (add && !model.some((m) => m.key === key)) {
            pool.add(key, address, key);
            model.push({ key, address });
          } else if (!add) {
            assert.equal(pool.delete(key), model.some((m) => m.key === key) ? key : undefined);
            model = model.filter((m) => m.key !== key);
          }
          assert.equal(pool.size(), model.length);
          assert.equal(pool.oldest(), model[0]?.key);
          for (const h of [1, 2, 3]) {
            const ofAddress = model.filter((m) => m.address === `10.0.0.${h}`);
            assert.equal(pool.size(`10.0.0.${h}`), ofAddress.length);
            assert.equal(pool.oldest(`10.0.0.${h}`), ofAddress[0]?.key);
          }
        }
      }),
    );
  });
});
