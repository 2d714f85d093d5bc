import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_SERIAL, effectivePolicy } from '../../../control-plane/effective-policy';
import { DEFAULT_POLICY } from '../../../src/model/policy-defaults';
import type { Policy } from '../../../src/proto/types';
import { binding, policy } from './fixtures';

function ok(result: ReturnType<typeof effectivePolicy>): { policy: Policy; serial: typeof DEFAULT_SERIAL } {
  if (result.refused) assert.fail(`unexpectedly refused: ${result.reason}`);
  return result;
}

describe('control-plane effective policy', () => {
  it('is the defaults when nothing is set', () => {
    const r = ok(effectivePolicy(binding('b'), new Map()));
    assert.deepEqual(r.policy, { ...DEFAULT_POLICY, workloads: [] });
    assert.equal(r.policy.sharing, 'SHARING_MODE_EXCLUSIVE');
    assert.equal(r.policy.access, 'ACCESS_READ_WRITE');
    assert.equal(r.policy.bytesPerSecond, '0');
    assert.equal(r.policy.queueDepth, 64);
    assert.equal(r.policy.commandTimeoutMs, 5000);
    assert.deepEqual(r.serial, DEFAULT_SERIAL);
  });

  it('lets the inline policy override the referenced one, unset fields falling through', () => {
    const policies = new Map([['lab', policy('lab', { sharing: 'SHARING_MODE_SHARED', queueDepth: 8, bytesPerSecond: '1000', priority: 3 })]]);
    const b = binding('b', { policyRef: 'lab', policy: policy('', { queueDepth: 16, access: 'ACCESS_READ_ONLY' }) });
    const r = ok(effectivePolicy(b, policies));
    assert.equal(r.policy.name, 'lab');
    assert.equal(r.policy.sharing, 'SHARING_MODE_SHARED');
    assert.equal(r.policy.queueDepth, 16);
    assert.equal(r.policy.access, 'ACCESS_READ_ONLY');
    assert.equal(r.policy.bytesPerSecond, '1000');
    assert.equal(r.policy.priority, 3);
    assert.equal(r.policy.commandTimeoutMs, 5000);
  });

  it('takes each field from the last layer that sets it (property)', () => {
    const depth = fc.constantFrom(0, 1, 64, 500);
    fc.assert(
      fc.property(depth, depth, (referenced, inline) => {
        const b = binding('b', { policyRef: 'p', policy: policy('', { queueDepth: inline }) });
        const r = ok(effectivePolicy(b, new Map([['p', policy('p', { queueDepth: referenced })]])));
        assert.equal(r.policy.queueDepth, inline || referenced || DEFAULT_POLICY.queueDepth);
      }),
    );
  });

  it('refuses a workload not listed by the referenced or the inline policy', () => {
    const policies = new Map([['lab', policy('lab', { workloads: ['app2', 'app3'] })]]);
    const refused = effectivePolicy(binding('b', { policyRef: 'lab' }), policies);
    assert.equal(refused.refused, true);
    assert.match(refused.refused ? refused.reason : '', /workload "app1" is not allowed by policy "lab" \(allowed: app2, app3\)/);
    const inline = effectivePolicy(binding('b', { policy: policy('', { workloads: ['app9'] }) }), new Map());
    assert.equal(inline.refused, true);
    const allowed = ok(effectivePolicy(binding('b', { workload: 'app2', policyRef: 'lab' }), policies));
    assert.deepEqual(allowed.policy.workloads, ['app2', 'app3']);
  });

  it('refuses a reference to a policy that does not exist', () => {
    const r = effectivePolicy(binding('b', { policyRef: 'ghost' }), new Map());
    assert.deepEqual(r, { refused: true, reason: 'policy "ghost" does not exist' });
  });

  it('merges serial settings over the serial defaults', () => {
    const b = binding('b', {
      serial: { baudRate: 9600, dataBits: 0, parity: 'PARITY_EVEN', stopBits: 'STOP_BITS_UNSPECIFIED', flowControl: 'FLOW_CONTROL_UNSPECIFIED', dtr: false },
    });
    const r = ok(effectivePolicy(b, new Map()));
    assert.deepEqual(r.serial, { ...DEFAULT_SERIAL, baudRate: 9600, parity: 'PARITY_EVEN', dtr: false });
    assert.equal('rts' in r.serial, false);
  });
});
