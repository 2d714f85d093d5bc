import { strict as assert } from 'node:assert';
import { resourceStatus, type StatusInputs } from '../../../../control-plane/kubernetes/resource-status';
import type { BindingStatus } from '../../../../src/proto/types';

const binding = (name: string, phase: BindingStatus['phase'], message: string, mappingId: string): BindingStatus =>
  ({ binding: { name }, phase, message, mappingId }) as unknown as BindingStatus;

const inputs = (over: Partial<StatusInputs>): StatusInputs => ({ kind: 'Binding', name: 'm', generation: 4, refusal: undefined, bindings: [], policies: [], ...over });

describe('Kubernetes resource status', () => {
  it('a mapped binding: MAPPED with its mapping id and the generation observed', () => {
    assert.deepEqual(resourceStatus(inputs({ bindings: [binding('m', 'BINDING_PHASE_MAPPED', '', 'm-1a2b')] })), {
      phase: 'MAPPED', message: 'mapped', mappingId: 'm-1a2b', observedGeneration: 4,
    });
  });

  it('a pending binding: PENDING with the mesh\'s reason and no mapping id', () => {
    assert.deepEqual(resourceStatus(inputs({ bindings: [binding('m', 'BINDING_PHASE_PENDING', 'device gw1:/dev/x is absent', 'm-1a2b')] })), {
      phase: 'PENDING', message: 'device gw1:/dev/x is absent', mappingId: '', observedGeneration: 4,
    });
  });

  it('a refusal wins over whatever the mesh still holds of an older generation', () => {
    const s = resourceStatus(inputs({ refusal: 'binding/m: virtual.protocol: "telnet" is not one of raw, rfc2217, grpc', bindings: [binding('m', 'BINDING_PHASE_MAPPED', '', 'm-1')] }));
    assert.deepEqual([s.phase, s.mappingId], ['REFUSED', '']);
    assert.match(s.message, /telnet/);
  });

  it('a binding the mesh does not have yet, and policies', () => {
    assert.equal(resourceStatus(inputs({ bindings: [binding('other', 'BINDING_PHASE_MAPPED', '', 'o')] })).phase, 'PENDING');
    assert.equal(resourceStatus(inputs({ kind: 'DevicePolicy', policies: [{ name: 'm' } as never] })).phase, 'APPLIED');
    assert.equal(resourceStatus(inputs({ kind: 'DevicePolicy' })).phase, 'PENDING');
    assert.equal(resourceStatus(inputs({ bindings: [binding('m', 'BINDING_PHASE_UNSPECIFIED', '', '')] })).phase, 'PENDING');
  });
});
