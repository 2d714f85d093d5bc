import * as assert from 'node:assert/strict';
import { ValidationError } from '../../../src/errors';
import type { Timestamp } from '../../../src/proto/types';
import { describeSelector, Register, selectEndpoint } from '../../../control-plane/register';
import { endpoint } from './fixtures';

const NOW = { seconds: '1700000000', nanos: 0 };

describe('control-plane register', () => {
  it('derives the id from host and device id and marks a reported device present', () => {
    const r = new Register();
    const e = r.reportEndpoint({ ...endpoint('gw1', 'usb-0403:6001:A1'), id: 'forged', state: 'ENDPOINT_STATE_ABSENT' }, NOW);
    assert.equal(e.id, 'gw1/usb-0403:6001:A1');
    assert.equal(e.state, 'ENDPOINT_STATE_PRESENT');
    assert.deepEqual(e.updatedAt, NOW);
    assert.deepEqual(r.endpoint('gw1/usb-0403:6001:A1'), e);
    assert.equal(r.endpoint('forged'), undefined);
  });

  it('refuses a report without host id or device id, naming the field', () => {
    const r = new Register();
    assert.throws(() => r.reportEndpoint(endpoint('', 'x'), NOW), (err: unknown) => err instanceof ValidationError && err.field === 'endpoint: hostId');
    assert.throws(() => r.reportEndpoint(endpoint('gw1', ''), NOW), (err: unknown) => err instanceof ValidationError && err.field === 'endpoint: deviceId');
    assert.throws(() => r.reportEndpoint(endpoint('gw/1', 'x'), NOW), /must not contain/);
    assert.equal(r.endpoints().length, 0);
  });

  it('selects by path preferring a present device over stale records at the same path', () => {
    const endpoints = [
      endpoint('gw1', 'usb-old', { path: '/dev/ttyUSB0', state: 'ENDPOINT_STATE_ABSENT' }),
      endpoint('gw1', 'usb-new', { path: '/dev/ttyUSB0', state: 'ENDPOINT_STATE_PRESENT' }),
      endpoint('gw2', 'usb-other', { path: '/dev/ttyUSB0' }),
    ];
    assert.equal(selectEndpoint(endpoints, { host: 'gw1', path: '/dev/ttyUSB0', id: '' })?.id, 'gw1/usb-new');
    assert.equal(selectEndpoint(endpoints, { host: 'gw1', path: '', id: 'usb-old' })?.id, 'gw1/usb-old');
    assert.equal(selectEndpoint(endpoints, { host: 'gw3', path: '/dev/ttyUSB0', id: '' }), undefined);
  });

  it('describes selectors the way messages name devices', () => {
    assert.equal(describeSelector({ host: 'gw1', path: '/dev/ttyUSB0', id: '' }), 'gw1:/dev/ttyUSB0');
    assert.equal(describeSelector({ host: 'gw1', path: '', id: 'usb-1' }), 'gw1/usb-1');
  });

  it('marks absent, removes, and filters by host', () => {
    const r = new Register([endpoint('gw1', 'a'), endpoint('gw2', 'b')]);
    assert.equal(r.markAbsent('gw1/a', NOW)?.state, 'ENDPOINT_STATE_ABSENT');
    assert.equal(r.markAbsent('gw1/zzz', NOW), undefined);
    assert.deepEqual(r.endpoints('gw2').map((e) => e.id), ['gw2/b']);
    assert.equal(r.removeEndpoint('gw2/b'), true);
    assert.equal(r.removeEndpoint('gw2/b'), false);
    assert.deepEqual(r.endpoints().map((e) => e.id), ['gw1/a']);
  });

  it('withdraws a disconnected host\'s socket-plane address, unless a later connection was recorded', () => {
    const r = new Register();
    const first = r.hostConnected('gw1', '10.0.0.5:15020', NOW).lastSeen as Timestamp;
    assert.equal(r.host('gw1')?.state, 'HOST_STATE_CONNECTED');
    const later = { seconds: String(Number(NOW.seconds) + 1), nanos: 0 };
    r.hostConnected('gw1', '10.0.0.5:15020', later);
    assert.equal(r.hostDisconnected('gw1', later, first), undefined, 'the end of an older connection');
    assert.equal(r.host('gw1')?.socketPlaneAddress, '10.0.0.5:15020');
    const h = r.hostDisconnected('gw1', later, later);
    assert.equal(h?.state, 'HOST_STATE_DISCONNECTED');
    assert.equal(h?.socketPlaneAddress, '');
    assert.equal(r.hostDisconnected('nope', NOW), undefined);
  });

  it('derives a draft that leaves the register as it was until folded', () => {
    const r = new Register([endpoint('gw1', 'a')]);
    const c = r.derive();
    c.removeEndpoint('gw1/a');
    c.hostConnected('gw1', '127.0.0.1:1', NOW);
    assert.equal(r.endpoints().length, 1);
    assert.equal(r.hosts().length, 0);
    assert.equal(r.select({ host: 'gw1', path: '', id: 'a' })?.id, 'gw1/a');
    assert.equal(c.select({ host: 'gw1', path: '', id: 'a' }), undefined);
    assert.deepEqual(c.changedEndpointIds(), ['gw1/a']);
    c.fold();
    assert.equal(r.endpoints().length, 0, 'folding makes the draft the content');
  });

  it('rolls a draft back to a mark, indexes included', () => {
    const r = new Register([endpoint('gw1', 'a')]).derive();
    const mark = r.mark();
    r.reportEndpoint({ ...endpoint('gw1', 'b'), path: '/dev/ttyS9' }, NOW);
    r.removeEndpoint('gw1/a');
    r.rollback(mark);
    assert.deepEqual(r.endpoints().map((e) => e.id), ['gw1/a']);
    assert.equal(r.select({ host: 'gw1', path: '/dev/ttyS9', id: '' }), undefined);
    assert.equal(r.select({ host: 'gw1', path: '', id: 'a' })?.id, 'gw1/a');
    assert.deepEqual(r.changedEndpointIds(), []);
  });

  describe('whole-host reports', () => {
    const LATER = { seconds: '1700000100', nanos: 0 };

    it('registers what is listed, marks absent the rest of the host, and leaves other hosts alone', () => {
      const r = new Register();
      r.reportEndpoint(endpoint('gw1', 'a', { path: '/dev/a' }), NOW);
      r.reportEndpoint(endpoint('gw1', 'b', { path: '/dev/b' }), NOW);
      r.reportEndpoint(endpoint('gw2', 'c', { path: '/dev/c' }), NOW);
      const outcome = r.reportHost('gw1', [endpoint('gw1', 'a', { path: '/dev/a' }), endpoint('gw1', 'new', { path: '/dev/new' })], LATER);
      assert.deepEqual(outcome, { registered: 1, markedAbsent: 1 });
      assert.deepEqual(
        r.endpoints().map((e) => [e.id, e.state]),
        [
          ['gw1/a', 'ENDPOINT_STATE_PRESENT'],
          ['gw1/b', 'ENDPOINT_STATE_ABSENT'],
          ['gw1/new', 'ENDPOINT_STATE_PRESENT'],
          ['gw2/c', 'ENDPOINT_STATE_PRESENT'],
        ],
      );
      assert.deepEqual(r.endpoint('gw1/a')?.updatedAt, NOW, 'an unchanged endpoint is not rewritten');
    });

    it('changes nothing for the same report twice, and rewrites an endpoint whose path or configuration changed', () => {
      const r = new Register();
      const report = [endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' })];
      r.reportHost('gw1', report, NOW);
      assert.deepEqual(r.reportHost('gw1', report, LATER), { registered: 0, markedAbsent: 0 });
      const moved = [endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB1', configuration: { baudRate: '9600' } })];
      assert.deepEqual(r.reportHost('gw1', moved, LATER), { registered: 1, markedAbsent: 0 });
      assert.equal(r.select({ host: 'gw1', path: '', id: 'usb-1' })?.path, '/dev/ttyUSB1', 'the same device on another port');
      assert.deepEqual(r.endpoint('gw1/usb-1')?.configuration, { baudRate: '9600' });
    });

    it('marks every device of the host absent for an empty report, and brings one back present when listed again', () => {
      const r = new Register();
      r.reportHost('gw1', [endpoint('gw1', 'a', { path: '/dev/a' })], NOW);
      assert.deepEqual(r.reportHost('gw1', [], LATER), { registered: 0, markedAbsent: 1 });
      assert.deepEqual(r.reportHost('gw1', [], LATER), { registered: 0, markedAbsent: 0 }, 'absent stays absent');
      r.reportHost('gw1', [endpoint('gw1', 'a', { path: '/dev/a' })], LATER);
      assert.equal(r.endpoint('gw1/a')?.state, 'ENDPOINT_STATE_PRESENT');
    });
  });
});
