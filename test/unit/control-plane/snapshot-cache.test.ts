import * as assert from 'node:assert/strict';
import { generateMappings } from '../../helpers/generate-mappings';
import { nodeKey, SnapshotCache } from '../../../control-plane/snapshot-cache';
import type { ChangeKind } from '../../../control-plane/state';
import type { Binding, Mapping } from '../../../src/proto/types';
import { unpackAny } from '../../../src/xds/any';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';
import { binding, endpoint, host, policy } from './fixtures';

const endpoints = [endpoint('gw1', '/dev/ttyUSB0'), endpoint('gw1', '/dev/ttyUSB1'), endpoint('gw2', '/dev/ttyUSB0')];
const hosts = [host('gw1', '10.0.0.1:15020'), host('gw2', '10.0.0.2:15020')];

function generate(bindings: Binding[], version: string, previous: Mapping[] = []): Mapping[] {
  return generateMappings({ bindings, policies: [], endpoints, hosts, version, previous }).mappings;
}

const BINDING: ReadonlySet<ChangeKind> = new Set(['binding']);

describe('control-plane snapshot cache', () => {
  const a = binding('a', { workload: 'app1' });
  const b = binding('b', { workload: 'app2', device: { host: 'gw1', path: '/dev/ttyUSB1', id: '' } });

  it('gives a sidecar its workload’s mappings and an agent its host’s, packed as Any', () => {
    const cache = new SnapshotCache();
    cache.update(generate([a, b], '1'), '1', BINDING);
    assert.deepEqual(cache.snapshot('sidecar', 'app1').mappings.map((m) => m.binding), ['a']);
    assert.deepEqual(cache.snapshot('agent', 'gw1').mappings.map((m) => m.binding), ['a', 'b']);
    const resources = cache.snapshot('sidecar', 'app2').resources;
    assert.equal(resources[0]?.type_url, MAPPING_TYPE_URL);
    assert.equal(unpackAny(resources[0]!, MAPPING_TYPE_URL).binding, 'b');
  });

  it('bumps only the proxies whose resources a change touches', () => {
    const cache = new SnapshotCache();
    const v1 = generate([a, b], '1');
    assert.deepEqual(cache.update(v1, '1', BINDING), [nodeKey('agent', 'gw1'), nodeKey('sidecar', 'app1'), nodeKey('sidecar', 'app2')]);
    // app2's binding moves to gw2: app2, gw1 and gw2 change; app1 does not.
    const moved = { ...b, device: { host: 'gw2', path: '/dev/ttyUSB0', id: '' } };
    const changed = cache.update(generate([a, moved], '2', v1), '2', BINDING);
    assert.deepEqual(changed, ['agent/gw1', 'agent/gw2', 'sidecar/app2']);
    assert.equal(cache.snapshot('sidecar', 'app1').version, '1');
    assert.equal(cache.snapshot('sidecar', 'app2').version, '2');
    // A version bump that changes nothing pushes to nobody.
    assert.deepEqual(cache.update(generate([a, moved], '3', generate([a, moved], '2', v1)), '3', BINDING), []);
    assert.equal(cache.snapshot('sidecar', 'app2').version, '2');
  });

  it('gives a proxy without mappings the empty set, and reports a withdrawal as a change', () => {
    const cache = new SnapshotCache();
    const v1 = generate([a], '1');
    cache.update(v1, '1', BINDING);
    assert.deepEqual(cache.snapshot('sidecar', 'nobody'), { version: '1', mappings: [], resources: [], byName: new Map() });
    assert.deepEqual(cache.update([], '2', BINDING), ['agent/gw1', 'sidecar/app1']);
    assert.deepEqual(cache.snapshot('sidecar', 'app1'), { version: '2', mappings: [], resources: [], byName: new Map() });
  });

  it('names each resource by mapping id with a content version that survives a restart', () => {
    const cache = new SnapshotCache();
    const v1 = generate([a, b], '1');
    cache.update(v1, '1', BINDING);
    const byName = cache.snapshot('agent', 'gw1').byName;
    assert.deepEqual([...byName.keys()], v1.map((m) => m.id).sort());
    const first = byName.get(v1[0]!.id)!;
    assert.match(first.version, /^[0-9a-f]{16}$/);
    assert.equal(first.resource, cache.snapshot('agent', 'gw1').resources[0]);

    // A new control plane loading the same mappings (same content, same mapping versions) agrees.
    const restarted = new SnapshotCache();
    restarted.update(generate([a, b], '7', v1), '7', BINDING);
    assert.equal(restarted.snapshot('agent', 'gw1').version, '7');
    assert.deepEqual(
      [...restarted.snapshot('agent', 'gw1').byName.values()].map((r) => [r.name, r.version]),
      [...byName.values()].map((r) => [r.name, r.version]),
    );

    // Changed content changes only that resource's version.
    const v2 = generate([a, { ...b, policy: policy('', { queueDepth: 3 }) }], '2', v1);
    cache.update(v2, '2', BINDING);
    const after = cache.snapshot('agent', 'gw1').byName;
    const idOf = (name: string): string => v2.find((m) => m.binding === name)!.id;
    assert.equal(after.get(idOf('a'))?.version, byName.get(idOf('a'))?.version);
    assert.notEqual(after.get(idOf('b'))?.version, byName.get(idOf('b'))?.version);
  });

  it('records why (the cause the commit gives) and when each changed proxy’s snapshot changed', () => {
    const cache = new SnapshotCache();
    const v1 = generate([a], '1');
    cache.update(v1, '1', BINDING);
    const reasons = (key: string): string[] => [...(cache.lastChange(key)?.reasons ?? [])].sort();
    assert.deepEqual(reasons('sidecar/app1'), ['binding'], 'a new mapping');
    assert.ok((cache.lastChange('sidecar/app1')?.at ?? 0) > 0);

    const v2 = generate([binding('a', { workload: 'app1', policy: policy('', { queueDepth: 9 }) })], '2', v1);
    cache.update(v2, '2', new Set(['policy', 'binding']));
    assert.deepEqual(reasons('sidecar/app1'), ['binding', 'policy'], 'a batch of two kinds of change');

    const moved = v2.map((m) => ({ ...m, devicePath: '/dev/ttyACM0' }));
    cache.update(moved, '3', new Set(['endpoint']));
    assert.deepEqual(reasons('agent/gw1'), ['endpoint']);

    cache.update(moved, '4', new Set(['host']));
    assert.deepEqual(reasons('agent/gw1'), ['endpoint'], 'a proxy whose snapshot did not move keeps its last change');

    cache.update([], '5', new Set(['restart']));
    assert.deepEqual(reasons('sidecar/app1'), ['restart']);
    assert.equal(cache.lastChange('sidecar/nobody'), undefined);
  });
});
