import { strict as assert } from 'node:assert';
import { buildOverview, type OverviewInput } from '../../../control-plane/dashboard/build-overview';
import { DEFAULT_POLICY } from '../../../src/model/policy-defaults';
import type { BindingStatus, Mapping, ProxyStatus } from '../../../src/proto/types';
import { binding, endpoint, host, policy } from './fixtures';

function mapping(overrides: Partial<Mapping> = {}): Mapping {
  return {
    id: 'm1', binding: 'b1', workloadId: 'app1', virtual: null, physicalId: 'gw1/usb-1', hostId: 'gw1', devicePath: '/dev/ttyUSB0',
    kind: 'DEVICE_KIND_SERIAL', agentAddress: '127.0.0.1:15020', policy: null, serial: null, version: '7', settings: {}, adaptiveLimit: null, roaming: false,
    ...overrides,
  };
}

function input(overrides: Partial<OverviewInput> = {}): OverviewInput {
  const status: BindingStatus = { binding: binding('b1'), phase: 'BINDING_PHASE_MAPPED', message: '', mappingId: 'm1' };
  return {
    version: '9', hosts: [host('gw1')], endpoints: [endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' })], bindings: [status],
    mappings: [mapping()], proxies: [], adaptation: [], roamingMoves: [], load: () => undefined, now: 1000,
    ...overrides,
  };
}

describe('control plane: the dashboard overview', () => {
  it('shows hosts with their devices, bindings with mapping and effective policy, enum prefixes removed', () => {
    const o = buildOverview(input({ mappings: [mapping({ policy: policy('p', { sharing: 'SHARING_MODE_SHARED', bytesPerSecond: '5000', queueDepth: 8 }) })] }));
    assert.equal(o.version, '9');
    assert.deepEqual(o.hosts.map((h) => [h.id, h.state, h.devices.map((d) => [d.path, d.state, d.kind])]), [['gw1', 'CONNECTED', [['/dev/ttyUSB0', 'PRESENT', 'SERIAL']]]]);
    const [b] = o.bindings;
    assert.equal(b?.phase, 'MAPPED');
    assert.equal(b?.mapping?.id, 'm1');
    assert.deepEqual(b?.mapping?.policy, {
      sharing: 'shared', access: 'read-write', bytesPerSecond: 5000, commandsPerSecond: 0, queueDepth: 8, commandTimeoutMs: DEFAULT_POLICY.commandTimeoutMs, priority: 0, overLimit: 'slow',
      roamingHoldMs: DEFAULT_POLICY.roamingHoldMs,
    });
    assert.equal(b?.rates, null, 'no load report: no rates');
  });

  it('takes rates from the binding’s fresh load report and proxies’ sync state and NACKs', () => {
    const proxies: ProxyStatus[] = [{
      nodeId: 'app1', kind: 'sidecar', peer: 'p', connectedAt: null,
      types: [{ typeUrl: 'type.googleapis.com/devicemesh.v1.Mapping', sentVersion: '3', ackedVersion: '2', state: 'SYNC_STATE_NACKED', nackedVersion: '3', nackMessage: 'bad port' }],
    }];
    const o = buildOverview(input({
      proxies,
      load: (hostId, mappingId) => hostId === 'gw1' && mappingId === 'm1'
        ? { report: { mappingId, bytesPerSecond: 1200, commandsPerSecond: 3, throttled: true, droppedBytes: '10', droppedCommands: '1' }, receivedAt: 900 }
        : undefined,
    }));
    assert.deepEqual(o.bindings[0]?.rates, { bytesPerSecond: 1200, commandsPerSecond: 3, throttled: true, droppedBytes: 10, droppedCommands: 1, reportedAt: 900 });
    assert.deepEqual(o.proxies, [{ name: 'sidecar/app1', kind: 'sidecar', nodeId: 'app1', peer: 'p', types: [{ type: 'devicemesh.v1.Mapping', sent: '3', acked: '2', state: 'NACKED', nack: 'bad port' }] }]);
  });

  it('lists a device of a host it has no record of under that host, and a binding without mapping', () => {
    const o = buildOverview(input({ hosts: [], mappings: [], bindings: [{ binding: binding('b1'), phase: 'BINDING_PHASE_PENDING', message: 'device absent', mappingId: '' }] }));
    assert.equal(o.hosts[0]?.state, 'UNKNOWN');
    assert.equal(o.bindings[0]?.mapping, null);
    assert.equal(o.bindings[0]?.message, 'device absent');
  });
});
