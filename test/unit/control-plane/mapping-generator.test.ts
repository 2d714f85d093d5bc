import * as assert from 'node:assert/strict';
import { mappingId } from '../../../control-plane/mapping-generator';
import { generateMappings, type MappingInputs } from '../../helpers/generate-mappings';
import { binding, endpoint, host, policy } from './fixtures';

function inputs(overrides: Partial<MappingInputs> = {}): MappingInputs {
  return {
    bindings: [binding('app1-modem')],
    policies: [],
    endpoints: [endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' })],
    hosts: [host('gw1', '10.0.0.5:15020')],
    version: '7',
    previous: [],
    ...overrides,
  };
}

describe('control-plane mapping generator', () => {
  it('maps a binding whose device is present and whose host has a socket-plane address', () => {
    const { mappings, statuses } = generateMappings(inputs());
    assert.equal(mappings.length, 1);
    const m = mappings[0]!;
    assert.match(m.id, /^app1-modem-[0-9a-f]{8}$/);
    assert.equal(m.id, mappingId(binding('app1-modem'), 'gw1/usb-1'));
    assert.equal(m.binding, 'app1-modem');
    assert.equal(m.workloadId, 'app1');
    assert.equal(m.virtual?.workloadId, 'app1');
    assert.equal(m.physicalId, 'gw1/usb-1');
    assert.equal(m.hostId, 'gw1');
    assert.equal(m.devicePath, '/dev/ttyUSB0');
    assert.equal(m.kind, 'DEVICE_KIND_SERIAL');
    assert.equal(m.agentAddress, '10.0.0.5:15020');
    assert.equal(m.policy?.sharing, 'SHARING_MODE_EXCLUSIVE');
    assert.equal(m.serial?.baudRate, 115200);
    assert.equal(m.version, '7');
    assert.equal(statuses[0]?.phase, 'BINDING_PHASE_MAPPED');
    assert.equal(statuses[0]?.mappingId, m.id);
  });

  it('keeps serving a device known from before a restart (state UNKNOWN), also by device id', () => {
    const { mappings } = generateMappings(
      inputs({
        bindings: [binding('b', { device: { host: 'gw1', path: '', id: 'usb-1' } })],
        endpoints: [endpoint('gw1', 'usb-1', { state: 'ENDPOINT_STATE_UNKNOWN' })],
        hosts: [host('gw1', '10.0.0.5:15020', 'HOST_STATE_DISCONNECTED')],
      }),
    );
    assert.equal(mappings.length, 1);
  });

  it('leaves a binding pending when its device is absent or not in the register', () => {
    const absent = generateMappings(inputs({ endpoints: [endpoint('gw1', 'usb-1', { state: 'ENDPOINT_STATE_ABSENT' })] }));
    assert.equal(absent.mappings.length, 0);
    assert.equal(absent.statuses[0]?.phase, 'BINDING_PHASE_PENDING');
    assert.equal(absent.statuses[0]?.message, 'device gw1:/dev/ttyUSB0 is absent');
    const missing = generateMappings(inputs({ endpoints: [] }));
    assert.equal(missing.statuses[0]?.phase, 'BINDING_PHASE_PENDING');
    assert.equal(missing.statuses[0]?.message, 'device gw1:/dev/ttyUSB0 is not in the register');
  });

  it('leaves a binding pending while its host has no socket-plane address', () => {
    for (const hosts of [[], [host('gw1', '')]]) {
      const { mappings, statuses } = generateMappings(inputs({ hosts }));
      assert.equal(mappings.length, 0);
      assert.equal(statuses[0]?.phase, 'BINDING_PHASE_PENDING');
      assert.match(statuses[0]?.message ?? '', /host gw1 has no socket-plane address/);
    }
  });

  it('refuses a binding its policy does not admit', () => {
    const { mappings, statuses } = generateMappings(
      inputs({ bindings: [binding('b', { policyRef: 'lab' })], policies: [policy('lab', { workloads: ['other'] })] }),
    );
    assert.equal(mappings.length, 0);
    assert.equal(statuses[0]?.phase, 'BINDING_PHASE_REFUSED');
    assert.match(statuses[0]?.message ?? '', /not allowed by policy "lab"/);
  });

  it('keeps a mapping version while its content is unchanged and moves it when it changes', () => {
    const first = generateMappings(inputs({ version: '3' }));
    const same = generateMappings(inputs({ version: '4', previous: first.mappings, hosts: [host('gw1', '10.0.0.5:15020', 'HOST_STATE_DISCONNECTED')] }));
    assert.equal(same.mappings[0]?.version, '3');
    assert.equal(same.mappings[0]?.id, first.mappings[0]?.id);
    const moved = generateMappings(inputs({ version: '5', previous: same.mappings, hosts: [host('gw1', '10.0.0.9:15020')] }));
    assert.equal(moved.mappings[0]?.version, '5');
    assert.equal(moved.mappings[0]?.id, first.mappings[0]?.id);
  });

  it('lets only the binding already holding a device keep it when another turns out to want it exclusively', () => {
    const byPath = binding('z-by-path');
    const byId = binding('a-by-id', { device: { host: 'gw1', path: '', id: 'usb-1' } });
    const first = generateMappings(inputs({ bindings: [byPath] }));
    const both = generateMappings(inputs({ bindings: [byPath, byId], previous: first.mappings }));
    assert.deepEqual(both.mappings.map((m) => m.binding), ['z-by-path']);
    const refused = both.statuses.find((s) => s.binding?.name === 'a-by-id');
    assert.equal(refused?.phase, 'BINDING_PHASE_REFUSED');
    assert.equal(refused?.message, 'device gw1/usb-1 is bound exclusively by binding/z-by-path');
  });

  it('maps several shared bindings of one device', () => {
    const shared = { policy: policy('', { sharing: 'SHARING_MODE_SHARED' }) };
    const { mappings } = generateMappings(inputs({ bindings: [binding('a', shared), binding('b', { ...shared, workload: 'app2' })] }));
    assert.equal(mappings.length, 2);
  });
});
