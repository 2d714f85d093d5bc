import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateMappings } from '../../helpers/generate-mappings';
import { Register, selectEndpoint } from '../../../control-plane/register';
import { ControlPlaneState } from '../../../control-plane/state';
import { StateStore } from '../../../control-plane/state-store';
import type { Binding, DeviceSelector, Mapping, Policy } from '../../../src/proto/types';
import { binding, endpoint, policy, removeDir, silentLog, tempDir } from './fixtures';

/**
 * The control plane commits through indexes, overlays and a generation that reuses what did not
 * change; on any sequence of changes, batched or not, refused or not, the result must be what a
 * from-scratch generation over the whole state gives, and the log must replay to the same state.
 */

const HOSTS = ['gw1', 'gw2'];
const DEVICES = ['d0', 'd1', 'd2', 'd3', 'd4'];
const PATHS = ['/dev/ttyS0', '/dev/ttyS1', '/dev/ttyS2'];

const selectorArb: fc.Arbitrary<DeviceSelector> = fc.oneof(
  fc.record({ host: fc.constantFrom(...HOSTS), path: fc.constantFrom(...PATHS), id: fc.constant('') }),
  fc.record({ host: fc.constantFrom(...HOSTS), path: fc.constant(''), id: fc.constantFrom(...DEVICES) }),
);

const sharingArb = fc.constantFrom<Policy['sharing']>('SHARING_MODE_UNSPECIFIED', 'SHARING_MODE_SHARED', 'SHARING_MODE_EXCLUSIVE');

const policyArb: fc.Arbitrary<Policy> = fc
  .record({ name: fc.constantFrom('p0', 'p1'), sharing: sharingArb, queueDepth: fc.nat({ max: 3 }), onlyW0: fc.boolean() })
  .map(({ name, sharing, queueDepth, onlyW0 }) => policy(name, { sharing, queueDepth, workloads: onlyW0 ? ['w0'] : [] }));

const bindingArb: fc.Arbitrary<Binding> = fc
  .record({
    name: fc.constantFrom('b0', 'b1', 'b2', 'b3', 'b4', 'b5'),
    workload: fc.constantFrom('w0', 'w1', 'w2'),
    device: selectorArb,
    policyRef: fc.constantFrom('', 'p0', 'p1'),
    sharing: sharingArb,
    baud: fc.constantFrom(0, 9600, 19200),
  })
  .map(({ name, workload, device, policyRef, sharing, baud }) =>
    binding(name, {
      workload,
      device,
      policyRef,
      policy: sharing === 'SHARING_MODE_UNSPECIFIED' ? null : policy('', { sharing }),
      // Distinct per name, so that listen addresses never clash within a workload.
      virtual: { workloadId: '', name: `${name}-dev`, protocol: 'VIRTUAL_PROTOCOL_RAW', listen: `127.0.0.1:${7000 + Number(name.slice(1))}` },
      serial: baud ? { baudRate: baud, dataBits: 0, parity: 'PARITY_UNSPECIFIED', stopBits: 'STOP_BITS_UNSPECIFIED', flowControl: 'FLOW_CONTROL_UNSPECIFIED' } : null,
    }),
  );

type Op = (state: ControlPlaneState) => Promise<unknown>;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ bindings: fc.array(bindingArb, { maxLength: 2 }), policies: fc.array(policyArb, { maxLength: 1 }) }).map(
    (docs): Op =>
      (s) =>
        s.apply(docs),
  ),
  fc.tuple(fc.constantFrom('binding', 'policy'), fc.constantFrom('b0', 'b1', 'p0', 'p1')).map(([kind, name]): Op => (s) => s.delete(kind, name)),
  fc.tuple(fc.constantFrom(...HOSTS), fc.constantFrom(...DEVICES), fc.constantFrom(...PATHS)).map(
    ([h, d, path]): Op =>
      (s) =>
        s.registerEndpoint(endpoint(h, d, { path })),
  ),
  fc.tuple(fc.constantFrom(...HOSTS), fc.constantFrom(...DEVICES), fc.boolean()).map(([h, d, absent]): Op => (s) => s.deregisterEndpoint(`${h}/${d}`, absent)),
  fc.tuple(fc.constantFrom(...HOSTS), fc.constantFrom('127.0.0.1:15020', '127.0.0.1:15021')).map(([h, address]): Op => (s) => s.hostConnected(h, address)),
  fc.constantFrom(...HOSTS).map((h): Op => (s) => s.hostDisconnected(h)),
);

/** Steps of one to three changes; the changes of a step are submitted together, so they share a batch. */
const stepsArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 20 });

function fromScratch(state: ControlPlaneState, previous: readonly Mapping[]): ReturnType<typeof generateMappings> {
  return generateMappings({
    bindings: state.bindingStatuses().map((s) => s.binding as Binding),
    policies: state.policies(),
    endpoints: state.endpoints(),
    hosts: state.hosts(),
    version: state.version(),
    previous,
  });
}

describe('control-plane incremental commits', function () {
  this.timeout(120_000);

  it('select through the register indexes agrees with a scan of every endpoint', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...HOSTS), fc.constantFrom(...DEVICES), fc.constantFrom(...PATHS), fc.boolean())),
        fc.array(fc.tuple(fc.constantFrom(...HOSTS), fc.constantFrom(...DEVICES))),
        selectorArb,
        (puts, removals, selector) => {
          const register = new Register().derive();
          const now = { seconds: '1', nanos: 0 };
          for (const [h, d, path, absent] of puts) {
            register.reportEndpoint(endpoint(h, d, { path }), now);
            if (absent) register.markAbsent(`${h}/${d}`, now);
          }
          const mark = register.mark();
          for (const [h, d] of removals) register.removeEndpoint(`${h}/${d}`);
          assert.equal(register.select(selector), selectEndpoint(register.endpoints(), selector));
          register.rollback(mark);
          assert.equal(register.select(selector), selectEndpoint(register.endpoints(), selector));
          register.fold();
          assert.equal(register.derive().select(selector), selectEndpoint(register.endpoints(), selector));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('versions a mapping anew when the binding refused its device last time gets it', async () => {
    const dir = await tempDir();
    try {
      const state = await ControlPlaneState.open(new StateStore(dir), silentLog);
      const steps: Op[] = [
        (s) => s.hostConnected('gw2', '127.0.0.1:15020'),
        // Different selectors of a device not yet registered: Apply cannot tell they clash.
        (s) => s.apply({ bindings: [binding('b0', { workload: 'w0', device: { host: 'gw2', path: '/dev/ttyS0', id: '' } })], policies: [] }),
        (s) => s.apply({ bindings: [binding('b1', { workload: 'w1', device: { host: 'gw2', path: '', id: 'd3' } })], policies: [] }),
        (s) => s.registerEndpoint(endpoint('gw2', 'd3', { path: '/dev/ttyS0' })),
        (s) => s.apply({ bindings: [binding('b2', { workload: 'w2' })], policies: [] }),
        (s) => s.delete('binding', 'b0'),
      ];
      for (const step of steps) {
        const previous = state.mappings();
        await step(state);
        const expected = fromScratch(state, previous);
        assert.deepEqual(state.mappings(), expected.mappings);
        assert.deepEqual(state.bindingStatuses(), expected.statuses);
      }
      assert.deepEqual(state.mappings().map((m) => [m.binding, m.version]), [['b1', state.version()]]);
    } finally {
      await removeDir(dir);
    }
  });

  it('gives the mappings and statuses of a from-scratch generation after any changes, and replays to the same state', async () => {
    await fc.assert(
      fc.asyncProperty(stepsArb, async (steps) => {
        const dir = await tempDir();
        try {
          const state = await ControlPlaneState.open(new StateStore(dir), silentLog);
          // A populated mesh to start from, so that most changes have something to affect.
          await Promise.all([
            ...HOSTS.map((h) => state.hostConnected(h, '127.0.0.1:15020')),
            ...DEVICES.slice(0, 3).map((d, i) => state.registerEndpoint(endpoint('gw1', d, { path: PATHS[i] }))),
            state.apply({ bindings: [], policies: [policy('p0'), policy('p1', { sharing: 'SHARING_MODE_SHARED' })] }),
          ]);
          for (const step of steps) {
            const previous = state.mappings();
            await Promise.allSettled(step.map((op) => op(state)));
            const expected = fromScratch(state, previous);
            assert.deepEqual(state.mappings(), expected.mappings);
            assert.deepEqual(state.bindingStatuses(), expected.statuses);
          }
          const before = { bindings: state.bindingStatuses().map((s) => s.binding), policies: state.policies(), hosts: state.hosts().map((h) => h.id) };
          const endpoints = state.endpoints().map((e) => ({ ...e, state: 'ENDPOINT_STATE_UNKNOWN' }));
          const previous = state.mappings();
          await state.idle();
          const reopened = await ControlPlaneState.open(new StateStore(dir), silentLog);
          assert.deepEqual(
            { bindings: reopened.bindingStatuses().map((s) => s.binding), policies: reopened.policies(), hosts: reopened.hosts().map((h) => h.id) },
            before,
          );
          assert.deepEqual(reopened.endpoints(), endpoints);
          assert.deepEqual(reopened.mappings(), fromScratch(reopened, previous).mappings, 'mapping versions survive the restart');
        } finally {
          await removeDir(dir);
        }
      }),
      { numRuns: 100 },
    );
  });
});
