import * as assert from 'node:assert/strict';
import { generateFrom, mappingId } from '../../../control-plane/mapping-generator';
import { generateMappings, type MappingInputs } from '../../helpers/generate-mappings';
import { Register } from '../../../control-plane/register';
import { conflictingDeviceIds, isRoaming, presentHosts } from '../../../src/model/roaming';
import type { Binding, PhysicalEndpoint } from '../../../src/proto/types';
import { EMPTY_POLICY, MAX_ROAMING_HOLD_MS } from '../../../src/model/policy-defaults';
import { ValidationError } from '../../../src/errors';
import { validateBinding } from '../../../src/model/validate';
import { binding, endpoint, host } from './fixtures';

const ID = 'usb-0403:6001:A50285BI';
const roaming = binding('follow', { device: { host: '', path: '', id: ID } });
const at = (seconds: number): { seconds: string; nanos: number } => ({ seconds: String(seconds), nanos: 0 });

function inputs(endpoints: PhysicalEndpoint[], previous: MappingInputs['previous'] = []): MappingInputs {
  return {
    bindings: [roaming],
    policies: [],
    endpoints,
    hosts: [host('gwa', '127.0.0.1:15020'), host('gwb', '127.0.0.2:15020')],
    version: '3',
    previous,
  };
}

describe('control-plane roaming bindings (a device id without a host)', () => {
  it('is a valid binding, and a path without a host is not', () => {
    assert.equal(isRoaming(roaming.device!), true);
    validateBinding(roaming);
    assert.throws(() => validateBinding(binding('lost', { device: { host: '', path: '/dev/ttyUSB0', id: '' } })), /device\.host/);
  });

  it('refuses a roamingHoldMs past an hour as a typed error, as it arrives over gRPC (a uint32)', () => {
    const held = (roamingHoldMs: number): Binding => ({ ...roaming, policy: { ...EMPTY_POLICY, roamingHoldMs } });
    validateBinding(held(MAX_ROAMING_HOLD_MS));
    for (const bad of [MAX_ROAMING_HOLD_MS + 1, 4_294_967_295, -1, 2.5]) {
      assert.throws(() => validateBinding(held(bad)), (err: unknown) => {
        assert.ok(err instanceof ValidationError, String(err));
        assert.match(err.message, new RegExp(`binding/follow: policy\\.roamingHoldMs: ${bad} is out of range \\(0 to 3600000\\)`));
        return true;
      });
    }
  });

  it('maps to whichever gateway reports the id, keeping one mapping id across the move', () => {
    const onA = generateMappings(inputs([endpoint('gwa', ID, { updatedAt: at(1) })]));
    assert.equal(onA.mappings[0]?.hostId, 'gwa');
    assert.equal(onA.mappings[0]?.agentAddress, '127.0.0.1:15020');
    assert.equal(onA.mappings[0]?.id, mappingId(roaming, ID));
    const onB = generateMappings(inputs([endpoint('gwa', ID, { state: 'ENDPOINT_STATE_ABSENT', updatedAt: at(5) }), endpoint('gwb', ID, { updatedAt: at(6) })], onA.mappings));
    assert.equal(onB.mappings.length, 1);
    assert.equal(onB.mappings[0]?.hostId, 'gwb');
    assert.equal(onB.mappings[0]?.physicalId, `gwb/${ID}`);
    assert.equal(onB.mappings[0]?.agentAddress, '127.0.0.2:15020');
    assert.equal(onB.mappings[0]?.id, onA.mappings[0]?.id, 'the sidecar sees the same mapping move');
    assert.equal(onB.statuses[0]?.phase, 'BINDING_PHASE_MAPPED');
  });

  it('is pending while no gateway has the device', () => {
    const gone = generateMappings(inputs([endpoint('gwa', ID, { state: 'ENDPOINT_STATE_ABSENT' })]));
    assert.equal(gone.mappings.length, 0);
    assert.equal(gone.statuses[0]?.phase, 'BINDING_PHASE_PENDING');
    assert.equal(gone.statuses[0]?.message, `device ${ID} is absent`);
  });

  it('reports two gateways with the id at once as a conflict and keeps traffic on the first', () => {
    const both = [endpoint('gwb', ID, { updatedAt: at(2) }), endpoint('gwa', ID, { updatedAt: at(9) })];
    const { mappings, statuses } = generateMappings(inputs(both));
    assert.equal(mappings.length, 1, 'never split traffic');
    assert.equal(mappings[0]?.hostId, 'gwb', 'the first to report it keeps it');
    assert.match(statuses[0]?.message ?? '', new RegExp(`conflict: device ${ID} is reported by gwb, gwa at once, traffic stays on gwb`));
    assert.deepEqual(presentHosts(both, ID), ['gwb', 'gwa']);
    assert.deepEqual([...conflictingDeviceIds(both)], [[ID, ['gwb', 'gwa']]]);
    assert.equal(conflictingDeviceIds([both[0]!]).size, 0);
  });

  it('notices a conflict that appears later, though the binding and its endpoint did not change', () => {
    const register = new Register([endpoint('gwa', ID, { updatedAt: at(1) })], [host('gwa', '127.0.0.1:15020'), host('gwb', '127.0.0.2:15020')]);
    const sources = (previous: ReturnType<typeof generateFrom> | undefined): Parameters<typeof generateFrom>[0] => ({
      bindings: [roaming],
      policies: new Map(),
      select: (s) => register.select(s),
      byDeviceId: (id) => register.byDeviceId(id),
      host: (id) => register.host(id),
      version: '1',
      previous: previous ? { mappings: previous.mappings, derived: previous.derived } : { mappings: [] },
    });
    const first = generateFrom(sources(undefined));
    assert.doesNotMatch(first.statuses[0]?.message ?? '', /conflict/);
    register.reportEndpoint(endpoint('gwb', ID), at(4));
    register.fold();
    const second = generateFrom(sources(first));
    assert.equal(second.mappings[0]?.hostId, 'gwa');
    assert.match(second.statuses[0]?.message ?? '', /conflict/);
  });

  it('selects by id on any host through the register index, and by host when one is given', () => {
    const register = new Register([endpoint('gwa', ID, { state: 'ENDPOINT_STATE_ABSENT' }), endpoint('gwb', ID)]);
    assert.equal(register.select({ host: '', path: '', id: ID })?.hostId, 'gwb');
    assert.equal(register.select({ host: 'gwa', path: '', id: ID })?.hostId, 'gwa');
    register.removeEndpoint(`gwb/${ID}`);
    assert.equal(register.select({ host: '', path: '', id: ID })?.hostId, 'gwa');
    assert.equal(register.byDeviceId(ID).length, 1);
  });
});
