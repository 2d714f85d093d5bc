import * as assert from 'node:assert/strict';
import { generateMappings } from '../../helpers/generate-mappings';
import { SnapshotCache } from '../../../control-plane/snapshot-cache';
import type { ChangeKind } from '../../../control-plane/state';
import { binding, endpoint, host } from './fixtures';

const BINDING: ReadonlySet<ChangeKind> = new Set(['binding']);

describe('control-plane snapshot cache, one hop', () => {
  it('sends a one-hop mapping to the agent of its host only, never to a sidecar', () => {
    const oneHop = binding('direct', {
      workload: 'app1',
      virtual: { workloadId: '', name: 'modem0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '', path: '/run/dm/app1/m.sock', owner: '1001', oneHop: true },
    });
    const twoHop = binding('relayed', { workload: 'app1', device: { host: 'gw1', path: '/dev/ttyUSB1', id: '' } });
    const { mappings } = generateMappings({
      bindings: [oneHop, twoHop],
      policies: [],
      endpoints: [endpoint('gw1', '/dev/ttyUSB0'), endpoint('gw1', '/dev/ttyUSB1')],
      hosts: [host('gw1', '10.0.0.1:15020')],
      version: '1',
      previous: [],
    });
    const cache = new SnapshotCache();
    cache.update(mappings, '1', BINDING);
    assert.deepEqual(cache.snapshot('sidecar', 'app1').mappings.map((m) => m.binding), ['relayed']);
    const agent = cache.snapshot('agent', 'gw1').mappings;
    assert.deepEqual(agent.map((m) => m.binding).sort(), ['direct', 'relayed']);
    assert.equal(agent.find((m) => m.binding === 'direct')?.virtual?.oneHop, true);
  });
});
