import { checkApply, checkPolicyDelete, type Documents } from '../../../control-plane/conflicts';
import { Register } from '../../../control-plane/register';
import type { Binding, DeviceSelector, PhysicalEndpoint, Policy, VirtualEndpoint } from '../../../src/proto/types';
import { binding, endpoint, policy, rejects } from './fixtures';

const none: Documents = { bindings: [], policies: [] };
const register = new Register([endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' })]);
const endpoints = (selector: DeviceSelector): PhysicalEndpoint | undefined => register.select(selector);
const shared = policy('', { sharing: 'SHARING_MODE_SHARED' });

/** A binding of workload app1 on its own device, exposed as `name` on `listen`. */
function virtualAt(bindingName: string, name: string, listen: string): Binding {
  const virtual: VirtualEndpoint = { workloadId: '', name, protocol: 'VIRTUAL_PROTOCOL_RAW', listen };
  return binding(bindingName, { device: { host: 'gw1', path: `/dev/${bindingName}`, id: '' }, virtual });
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

  it('compares listen addresses by meaning: the same port spelled differently, and wildcards, clash', () => {
    const stored = { bindings: [virtualAt('a', 'm0', '127.0.0.1:7000')], policies: [] };
    const apply = (b: Binding): void => checkApply(stored, endpoints, { bindings: [b], policies: [] });
    rejects(() => apply(virtualAt('b', 'm1', '127.0.0.1:07000')), 'binding/b: virtual.listen', /already used by binding\/a/);
    rejects(() => apply(virtualAt('b', 'm1', '0.0.0.0:7000')), 'binding/b: virtual.listen', /already used by binding\/a/);
    rejects(() => apply(virtualAt('b', 'm1', '[::]:7000')), 'binding/b: virtual.listen', /already used by binding\/a/);
    apply(virtualAt('b', 'm1', '127.0.0.2:7000'));
    apply(virtualAt('b', 'm1', '127.0.0.1:7001'));
  });

  it('rejects two virtual devices of one workload with the same name', () => {
    const stored = { bindings: [virtualAt('a', 'm0', '127.0.0.1:7000')], policies: [] };
    rejects(
      () => checkApply(stored, endpoints, { bindings: [virtualAt('b', 'm0', '127.0.0.1:7001')], policies: [] }),
      'binding/b: virtual.name',
      /m0 is already used by binding\/a of workload app1/,
    );
    checkApply(stored, endpoints, { bindings: [{ ...virtualAt('b', 'm0', '127.0.0.1:7001'), workload: 'app2' }], policies: [] });
  });

  it('rejects what only a gRPC caller can send: enum numbers, a foreign workloadId, port 0, control characters', () => {
    const apply = (b: Binding, p: Policy[] = []): void => checkApply(none, endpoints, { bindings: [b], policies: p });
    // proto-loader hands over an enum value it has no name for as its number.
    const unknownSharing = { ...policy(''), sharing: 42 } as unknown as Policy;
    rejects(() => apply(binding('a', { policy: unknownSharing })), 'binding/a: policy.sharing', /42 is not one of/);
    rejects(() => apply(binding('a'), [{ ...policy('lab'), access: 'ACCESS_SIDEWAYS' } as unknown as Policy]), 'policy/lab: policy.access', /"ACCESS_SIDEWAYS" is not one of/);
    const unknownParity = { baudRate: 0, dataBits: 0, parity: 7, stopBits: 'STOP_BITS_UNSPECIFIED', flowControl: 'FLOW_CONTROL_UNSPECIFIED' } as unknown as Binding['serial'];
    rejects(() => apply(binding('a', { serial: unknownParity })), 'binding/a: serial.parity', /7 is not one of/);
    rejects(() => apply({ ...virtualAt('a', 'm0', '127.0.0.1:7000'), virtual: { workloadId: 'app9', name: 'm0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7000' } }), 'binding/a: virtual.workloadId', /not the binding's workload "app1"/);
    rejects(() => apply(virtualAt('a', 'm0', '127.0.0.1:0')), 'binding/a: virtual.listen', /port 0/);
    rejects(() => apply(binding('a', { device: { host: 'gw1', path: '/dev/tty\u0000USB0', id: '' } })), 'binding/a: device.path', /control characters/);
  });
});
