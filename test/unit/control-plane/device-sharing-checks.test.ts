import { checkApply, type Documents } from '../../../control-plane/conflicts';
import { generateMappings } from '../../helpers/generate-mappings';
import { Register } from '../../../control-plane/register';
import { sharingRefusal } from '../../../control-plane/sharing-modes';
import type { Binding, DeviceKind, DeviceSelector, PhysicalEndpoint, Policy, SharingMode } from '../../../src/proto/types';
import * as assert from 'node:assert/strict';
import { binding, endpoint, host, policy, rejects } from './fixtures';

const register = new Register([
  endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' }),
  endpoint('gw1', 'gpio-1', { path: '/dev/gpiochip0', kind: 'DEVICE_KIND_GPIO' }),
  endpoint('gw1', 'iio-1', { path: '/sys/bus/iio/devices/iio:device0', kind: 'DEVICE_KIND_SENSOR' }),
  endpoint('gw1', 'cam-1', { path: '/dev/video0', kind: 'DEVICE_KIND_VIDEO' }),
]);
const select = (selector: DeviceSelector): PhysicalEndpoint | undefined => register.select(selector);
const none: Documents = { bindings: [], policies: [] };

function on(name: string, path: string, p: Partial<Policy>, workload = `w-${name}`): Binding {
  return binding(name, { workload, device: { host: 'gw1', path, id: '' }, policy: policy('', p) });
}
const serial = (name: string, p: Partial<Policy>): Binding => on(name, '/dev/ttyUSB0', p);
const apply = (stored: readonly Binding[], incoming: readonly Binding[], policies: Policy[] = []): void =>
  checkApply({ bindings: stored, policies }, select, { bindings: incoming, policies: [] });

describe('control-plane apply checks: device sharing and bandwidth', () => {
  it('refuses sharing modes a device kind cannot do, naming the kind', () => {
    const gpio = on('g', '/dev/gpiochip0', { sharing: 'SHARING_MODE_SHARED' });
    rejects(() => apply([], [gpio]), 'binding/g: policy.sharing', /shared sharing is not possible on a gpio device: it has no byte stream.*gw1\/gpio-1 is one/);
    const sensor = on('s', '/sys/bus/iio/devices/iio:device0', { sharing: 'SHARING_MODE_TIME_SLICE' });
    rejects(() => apply([], [sensor]), 'binding/s: policy.sharing', /time-slice sharing is not possible on a sensor device/);
    const video = on('v', '/dev/video0', { sharing: 'SHARING_MODE_SHARED' });
    rejects(() => apply([], [video]), 'binding/v: policy.sharing', /on a video device: it streams and answers no commands/);
    apply([], [on('g', '/dev/gpiochip0', { sharing: 'SHARING_MODE_BROADCAST' })]);
    apply([], [on('v', '/dev/video0', { sharing: 'SHARING_MODE_TIME_SLICE' })]);
    apply([], [on('g', '/dev/gpiochip0', {})]);
  });

  it('knows every kind: serial, HID and lab cards can be shared every way', () => {
    const modes: SharingMode[] = ['SHARING_MODE_EXCLUSIVE', 'SHARING_MODE_SHARED', 'SHARING_MODE_TIME_SLICE', 'SHARING_MODE_BROADCAST'];
    const kinds: DeviceKind[] = ['DEVICE_KIND_SERIAL', 'DEVICE_KIND_HID', 'DEVICE_KIND_LAB_CARD'];
    for (const k of kinds) for (const m of modes) assert.equal(sharingRefusal(k, m), undefined, `${k} ${m}`);
    for (const k of ['DEVICE_KIND_GPIO', 'DEVICE_KIND_SENSOR', 'DEVICE_KIND_VIDEO', 'DEVICE_KIND_AUDIO'] as const) {
      assert.equal(sharingRefusal(k, 'SHARING_MODE_EXCLUSIVE'), undefined);
      assert.equal(sharingRefusal(k, 'SHARING_MODE_BROADCAST'), undefined);
      assert.ok(sharingRefusal(k, 'SHARING_MODE_SHARED'));
    }
  });

  it('refuses bindings of one device that share it differently', () => {
    rejects(
      () => apply([serial('a', { sharing: 'SHARING_MODE_SHARED' })], [serial('b', { sharing: 'SHARING_MODE_TIME_SLICE' })]),
      'binding/b: policy.sharing',
      /is time-slice but binding\/a of the same device gw1\/usb-1 has shared; the bindings of one device must be shared the same way/,
    );
  });

  it('refuses bindings of one device that disagree on its capacity, set or not', () => {
    const a = serial('a', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '10000' });
    rejects(
      () => apply([a], [serial('b', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '20000' })]),
      'binding/b: policy.deviceBytesPerSecond',
      /is 20000 but binding\/a .* has 10000; .* must agree on its capacity/,
    );
    rejects(() => apply([a], [serial('b', { sharing: 'SHARING_MODE_SHARED' })]), 'binding/b: policy.deviceBytesPerSecond', /is 0 but binding\/a/);
    apply([a], [serial('b', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '10000' })]);
  });

  it('refuses a policy change that makes one device’s bindings disagree', () => {
    const stored = [
      binding('a', { workload: 'w1', policyRef: 'p' }),
      binding('b', { workload: 'w2', policyRef: 'q' }),
    ];
    const p = policy('p', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '5000' });
    const q = policy('q', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '5000' });
    checkApply({ bindings: stored, policies: [p, q] }, select, none);
    rejects(
      () => checkApply({ bindings: stored, policies: [p, q] }, select, { bindings: [], policies: [{ ...q, deviceBytesPerSecond: '6000' }] }),
      'binding/b: policy.deviceBytesPerSecond',
      /is 6000 but binding\/a/,
    );
  });

  it('refuses minimums above the device’s capacity, or above the binding’s own limit', () => {
    const shared = { sharing: 'SHARING_MODE_SHARED' as const, deviceBytesPerSecond: '1000' };
    const a = serial('a', { ...shared, minBytesPerSecond: '600' });
    rejects(
      () => apply([a], [serial('b', { ...shared, minBytesPerSecond: '500' })]),
      'binding/b: policy.minBytesPerSecond',
      /the minimums of gw1\/usb-1's bindings add up to 1100 bytes\/s \(binding\/a 600, binding\/b 500\), above its capacity \(deviceBytesPerSecond 1000\)/,
    );
    apply([a], [serial('b', { ...shared, minBytesPerSecond: '400' })]);
    rejects(
      () => apply([], [serial('c', { minBytesPerSecond: '2000', bytesPerSecond: '1000' })]),
      'binding/c: policy.minBytesPerSecond',
      /2000 bytes\/s is above the binding's own limit \(bytesPerSecond 1000\)/,
    );
    apply([], [serial('c', { minBytesPerSecond: '1000', bytesPerSecond: '1000' })]);
  });

  it('allows one read-write binding of a broadcast device', () => {
    const broadcast = { sharing: 'SHARING_MODE_BROADCAST' as const };
    const writer = serial('w', broadcast);
    rejects(
      () => apply([writer], [serial('x', broadcast)]),
      'binding/x: policy.access',
      /gw1\/usb-1 is shared by broadcast and binding\/w is its read-write binding already; broadcast allows one: make this one read-only/,
    );
    apply([writer], [serial('r1', { ...broadcast, access: 'ACCESS_READ_ONLY' }), serial('r2', { ...broadcast, access: 'ACCESS_READ_ONLY' })]);
  });

  it('refuses the mapping of a device registered after the apply when its kind cannot be shared that way', () => {
    const b = binding('g', { device: { host: 'gw1', path: '/dev/gpiochip1', id: '' }, policy: policy('', { sharing: 'SHARING_MODE_TIME_SLICE' }) });
    apply([], [b]);
    const generated = generateMappings({
      bindings: [b],
      policies: [],
      endpoints: [endpoint('gw1', 'gpio-2', { path: '/dev/gpiochip1', kind: 'DEVICE_KIND_GPIO' })],
      hosts: [host('gw1')],
      version: '5',
      previous: [],
    });
    assert.deepEqual(generated.mappings, []);
    assert.equal(generated.statuses[0]?.phase, 'BINDING_PHASE_REFUSED');
    assert.match(generated.statuses[0]?.message ?? '', /time-slice sharing is not possible on a gpio device.*gw1\/gpio-2 is one/);
  });
});
