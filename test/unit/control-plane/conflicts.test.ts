import * as assert from 'node:assert/strict';
import { checkApply, checkPolicyDelete, type Documents } from '../../../control-plane/conflicts';
import { ValidationError } from '../../../src/errors';
import { binding, endpoint, policy } from './fixtures';

const none: Documents = { bindings: [], policies: [] };
const endpoints = [endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' })];
const shared = policy('', { sharing: 'SHARING_MODE_SHARED' });

function rejects(fn: () => void, field: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, reason);
    return true;
  });
}

describe('control-plane apply conflicts', () => {
  it('accepts a valid apply', () => {
    checkApply(none, endpoints, { bindings: [binding('a')], policies: [policy('lab')] });
  });

  it('rejects two exclusive bindings on one device, even selected differently', () => {
    const stored = { bindings: [binding('a')], policies: [] };
    const byId = binding('b', { workload: 'app2', device: { host: 'gw1', path: '', id: 'usb-1' } });
    rejects(() => checkApply(stored, endpoints, { bindings: [byId], policies: [] }), 'binding/b: device', /gw1\/usb-1 is also bound by binding\/a/);
  });

  it('rejects a shared binding on a device held exclusively, and accepts two shared ones', () => {
    const stored = { bindings: [binding('a')], policies: [] };
    rejects(
      () => checkApply(stored, endpoints, { bindings: [binding('b', { workload: 'app2', policy: shared })], policies: [] }),
      'binding/b: device',
      /bound exclusively by binding\/a/,
    );
    checkApply({ bindings: [binding('a', { policy: shared })], policies: [] }, endpoints, {
      bindings: [binding('b', { workload: 'app2', policy: shared })],
      policies: [],
    });
  });

  it('rejects a policy change that makes shared bindings of one device exclusive', () => {
    const stored = { bindings: [binding('a', { policyRef: 'p' }), binding('b', { workload: 'app2', policyRef: 'p' })], policies: [policy('p', { sharing: 'SHARING_MODE_SHARED' })] };
    checkApply(stored, endpoints, none);
    rejects(() => checkApply(stored, endpoints, { bindings: [], policies: [policy('p', { sharing: 'SHARING_MODE_EXCLUSIVE' })] }), 'binding/a: device', /also bound/);
  });

  it('rejects two bindings of one workload on the same listen address', () => {
    const stored = { bindings: [binding('a', { virtual: { workloadId: '', name: 'm0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7000' } })], policies: [] };
    const clash = binding('b', {
      device: { host: 'gw1', path: '/dev/ttyUSB1', id: '' },
      virtual: { workloadId: '', name: 'm1', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7000' },
    });
    rejects(() => checkApply(stored, endpoints, { bindings: [clash], policies: [] }), 'binding/b: virtual.listen', /127\.0\.0\.1:7000 is already used by binding\/a of workload app1/);
    // Another workload has its own sidecar, and a binding may keep its own address when re-applied.
    checkApply(stored, endpoints, { bindings: [{ ...clash, workload: 'app2' }], policies: [] });
    checkApply(stored, endpoints, { bindings: stored.bindings, policies: [] });
  });

  it('rejects a document appearing twice, an invalid document and an unknown policy reference', () => {
    rejects(() => checkApply(none, endpoints, { bindings: [binding('a'), binding('a')], policies: [] }), 'binding/a: name', /more than once/);
    rejects(
      () => checkApply(none, endpoints, { bindings: [binding('a', { serial: { baudRate: 7, dataBits: 0, parity: 'PARITY_UNSPECIFIED', stopBits: 'STOP_BITS_UNSPECIFIED', flowControl: 'FLOW_CONTROL_UNSPECIFIED' } })], policies: [] }),
      'binding/a: serial.baudRate',
      /out of range/,
    );
    rejects(() => checkApply(none, endpoints, { bindings: [binding('a', { policyRef: 'ghost' })], policies: [] }), 'binding/a: policyRef', /does not exist/);
    rejects(() => checkApply(none, endpoints, { bindings: [], policies: [policy('')] }), 'policy/?: name', /required/);
    // Referencing a policy applied in the same request is fine.
    checkApply(none, endpoints, { bindings: [binding('a', { policyRef: 'lab' })], policies: [policy('lab')] });
  });

  it('refuses to delete a policy still referenced', () => {
    rejects(() => checkPolicyDelete('lab', [binding('a', { policyRef: 'lab' })]), 'policy/lab', /is used by binding\/a/);
    checkPolicyDelete('lab', [binding('a')]);
  });
});
