import * as assert from 'node:assert/strict';
import { canonicalMapping } from '../../../control-plane/canonical';
import type { Mapping } from '../../../src/proto/types';
import { packAny } from '../../../src/xds/any';
import type { DeltaDiscoveryResponse, XdsResource } from '../../../src/xds/delta-messages';
import { applyDelta, NO_RESOURCES, versionsOf } from '../../../src/xds/delta-resources';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';

function response(resources: XdsResource[], removedResources: string[] = []): DeltaDiscoveryResponse {
  return { systemVersionInfo: '1', resources, typeUrl: MAPPING_TYPE_URL, removedResources, nonce: 'n' };
}

function named(id: string, version: string): XdsResource {
  return { name: id, version, resource: packAny(MAPPING_TYPE_URL, canonicalMapping({ id, devicePath: `/dev/${id}` })) };
}

describe('xds: the incremental resource set', () => {
  it('applies removals, then updates, in name order, leaving the current set alone', () => {
    const one = applyDelta(NO_RESOURCES, response([named('c', '1'), named('a', '1')]));
    assert.deepEqual(versionsOf(one), { a: '1', c: '1' });
    assert.deepEqual([...one.keys()], ['a', 'c']);
    assert.equal((one.get('a')?.message as Mapping).devicePath, '/dev/a');

    const two = applyDelta(one, response([named('b', '1'), named('c', '2')], ['a', 'never-held']));
    assert.deepEqual(versionsOf(two), { b: '1', c: '2' });
    assert.deepEqual(versionsOf(one), { a: '1', c: '1' }, 'unchanged');
    assert.deepEqual(versionsOf(applyDelta(two, response([named('b', '2')], ['b']))), { b: '2', c: '2' }, 'a removed and re-added name stays');
  });

  it('refuses a resource without a name, without a body, or of another type', () => {
    assert.throws(() => applyDelta(NO_RESOURCES, response([{ ...named('a', '1'), name: '' }])), { code: 'PROTOCOL_ERROR', message: /has no name/ });
    assert.throws(() => applyDelta(NO_RESOURCES, response([{ ...named('a', '1'), resource: null }])), { code: 'PROTOCOL_ERROR', message: /resource a has no body/ });
    const foreign = { name: 'a', version: '1', resource: { type_url: 'type.googleapis.com/x.Y', value: Buffer.alloc(0) } };
    assert.throws(() => applyDelta(NO_RESOURCES, response([foreign])), { code: 'PROTOCOL_ERROR', message: /x\.Y/ });
  });
});
