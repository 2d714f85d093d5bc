import { strict as assert } from 'node:assert';
import { ConnectionLimiter } from '../../../src/security/connection-limiter';
import { RefusalLog, REFUSAL_LOG_WINDOW_MS } from '../../../src/security/refusal-log';
import { Stats } from '../../../src/telemetry/stats';
import { recordingLogger } from '../agent/helpers';

describe('security/connection-limiter', () => {
  let now: number;
  const clock = (): number => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('limits connections per peer and in all; a released one makes room', () => {
    const limiter = new ConnectionLimiter({ perPeer: 2, total: 3, ratePerPeer: 0 }, clock);
    assert.equal(limiter.take('10.0.0.1'), undefined);
    assert.equal(limiter.take('10.0.0.1'), undefined);
    assert.equal(limiter.take('10.0.0.1'), 'too_many_connections_from_peer');
    assert.equal(limiter.take('10.0.0.2'), undefined);
    assert.equal(limiter.take('10.0.0.3'), 'too_many_connections');
    assert.equal(limiter.connections, 3);
    limiter.release('10.0.0.1');
    assert.equal(limiter.take('10.0.0.3'), undefined);
    limiter.release('10.0.0.9');
    assert.equal(limiter.connections, 3, 'releasing an unknown peer changes nothing');
  });

  it('limits the rate of new connections per peer with a burst of one second, refilled by the clock', () => {
    const limiter = new ConnectionLimiter({ perPeer: 100, total: 100, ratePerPeer: 4 }, clock);
    for (let i = 0; i < 4; i++) assert.equal(limiter.take('10.0.0.1'), undefined);
    assert.equal(limiter.take('10.0.0.1'), 'connection_rate_from_peer');
    assert.equal(limiter.take('10.0.0.2'), undefined, 'another peer has its own bucket');
    now += 250;
    assert.equal(limiter.take('10.0.0.1'), undefined);
    assert.equal(limiter.take('10.0.0.1'), 'connection_rate_from_peer');
    assert.equal(limiter.connections, 6, 'refused connections are not counted');
  });

  it('lets a burst larger than the sustained rate through at once, then holds the peer to the rate', () => {
    const limiter = new ConnectionLimiter({ perPeer: 100, total: 100, ratePerPeer: 2, burstPerPeer: 10 }, clock);
    for (let i = 0; i < 10; i++) assert.equal(limiter.take('10.0.0.1'), undefined, `burst connection ${i}`);
    assert.equal(limiter.take('10.0.0.1'), 'connection_rate_from_peer');
    now += 500;
    assert.equal(limiter.take('10.0.0.1'), undefined, 'one token back after half a second at 2/s');
    assert.equal(limiter.take('10.0.0.1'), 'connection_rate_from_peer');
    now += 60_000;
    for (let i = 0; i < 10; i++) assert.equal(limiter.take('10.0.0.3'), undefined);
    for (let i = 0; i < 10; i++) assert.equal(limiter.take('10.0.0.1'), undefined, 'refilled to the burst, not beyond');
    assert.equal(limiter.take('10.0.0.1'), 'connection_rate_from_peer');
  });
});

describe('security/refusal-log', () => {
  it('counts every refusal; logs one line per reason and peer per window, with how many were not logged', () => {
    let now = 0;
    const stats = new Stats();
    const { log, records } = recordingLogger();
    const refusals = new RefusalLog('things_refused', stats, log, () => now);
    for (let i = 0; i < 5; i++) refusals.refuse('too_many', `10.0.0.1:${4000 + i}`, { mapping: 'm1' }, 'refused');
    refusals.refuse('too_many', '10.0.0.2:1', {}, 'refused');
    refusals.refuse('other', '10.0.0.1:1', {}, 'refused');
    assert.equal(stats.get('things_refused', { reason: 'too_many' }), 6);
    assert.equal(records.length, 3);
    assert.deepEqual([records[0]?.peer, records[0]?.reason, records[0]?.mapping], ['10.0.0.1:4000', 'too_many', 'm1']);
    now += REFUSAL_LOG_WINDOW_MS;
    refusals.refuse('too_many', '10.0.0.1:5000', {}, 'refused');
    assert.equal(records.length, 4);
    assert.equal(records[3]?.alsoRefusedSinceLastLog, 4);
  });
});
