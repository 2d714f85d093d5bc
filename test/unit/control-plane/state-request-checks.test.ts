import { checkDeleteRequest, checkEndpointReport, checkMappingFilter } from '../../../control-plane/request-checks';
import type { PhysicalEndpoint } from '../../../src/proto/types';
import { endpoint, rejects } from './fixtures';


describe('control-plane request checks', () => {
  it('accepts an endpoint as agents report it, and refuses one with a missing or malformed field', () => {
    checkEndpointReport(endpoint('gw1', 'usb-0403:6001:A50285BI', { capabilities: ['serial'], labels: { rack: 'r1' } }));
    checkEndpointReport(endpoint('gw1', '/dev/ttyUSB0', { path: '/dev/ttyUSB0' }));
    const bad = (overrides: Partial<PhysicalEndpoint>): PhysicalEndpoint => endpoint('gw1', 'usb-1', overrides);
    rejects(() => checkEndpointReport(bad({ hostId: '' })), 'endpoint: hostId', /is required/);
    rejects(() => checkEndpointReport(bad({ hostId: 'gw/1' })), 'endpoint: hostId', /must not contain '\/'/);
    rejects(() => checkEndpointReport(bad({ deviceId: '' })), 'endpoint: deviceId', /is required/);
    rejects(() => checkEndpointReport(bad({ path: '' })), 'endpoint/gw1/usb-1: path', /is required/);
    rejects(() => checkEndpointReport(bad({ path: '/dev/tty\nUSB0' })), 'endpoint/gw1/usb-1: path', /control characters/);
    rejects(() => checkEndpointReport(bad({ kind: 'DEVICE_KIND_UNSPECIFIED' })), 'endpoint/gw1/usb-1: kind', /is required/);
    rejects(() => checkEndpointReport(bad({ kind: 9 as unknown as PhysicalEndpoint['kind'] })), 'endpoint/gw1/usb-1: kind', /9 is not one of/);
    rejects(() => checkEndpointReport(bad({ capabilities: [''] })), 'endpoint/gw1/usb-1: capabilities[]', /must not be empty/);
    rejects(() => checkEndpointReport(bad({ labels: { '': 'x' } })), 'endpoint/gw1/usb-1: labels', /key must not be empty/);
    rejects(() => checkEndpointReport(bad({ labels: { rack: 'x'.repeat(2000) } })), 'endpoint/gw1/usb-1: labels.rack', /longer than 1024/);
  });

  it('checks a Delete names a kind and a name, and the filters of ListMappings', () => {
    checkDeleteRequest('binding', 'a');
    checkDeleteRequest('policy', 'lab');
    rejects(() => checkDeleteRequest('gadget', 'a'), 'kind', /"gadget" is not one of binding, policy/);
    rejects(() => checkDeleteRequest('binding', ''), 'binding/?: name', /is required/);
    checkMappingFilter({ workloadId: '', hostId: '' });
    checkMappingFilter({ workloadId: 'app1', hostId: 'gw1' });
    rejects(() => checkMappingFilter({ workloadId: 'app 1', hostId: '' }), 'workloadId', /must not contain/);
    rejects(() => checkMappingFilter({ workloadId: '', hostId: 'gw1/x' }), 'hostId', /must not contain/);
  });
});
