import { strict as assert } from 'node:assert';
import { JoinThrottle } from '../../../control-plane/security/join-throttle';

describe('control-plane/join-throttle', () => {
  it('admits a clean source at once, spaces attempts after failures, doubling to 5 s, and forgets on success', () => {
    let now = 0;
    const t = new JoinThrottle(() => now);
    assert.equal(t.admit('10.0.0.1'), 0);
    t.failed('10.0.0.1');
    assert.equal(t.admit('10.0.0.1'), 250);
    // A parallel guess waits behind the one already admitted.
    assert.equal(t.admit('10.0.0.1'), 500);
    now = 1000;
    t.failed('10.0.0.1');
    t.failed('10.0.0.1');
    assert.equal(t.admit('10.0.0.1'), 1000);
    assert.equal(t.admit('10.0.0.2'), 0, 'another source is not slowed');
    for (let i = 0; i < 10; i += 1) t.failed('10.0.0.1');
    const waits: (number | undefined)[] = [];
    for (let i = 0; i < 8; i += 1) waits.push(t.admit('10.0.0.1'));
    assert.ok(waits.includes(undefined), `a pile of waiting guesses is refused: ${waits.join(',')}`);
    assert.ok(waits.every((w) => w === undefined || w <= 20_000));
    t.succeeded('10.0.0.1');
    assert.equal(t.admit('10.0.0.1'), 0);
  });
});
