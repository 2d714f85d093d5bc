import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { Mapping } from '../../../src/proto/types';
import { diffMappings } from '../../../sidecar/mapping-diff';
import { EMPTY_POLICY } from '../../../src/model/policy-defaults';

function mapping(id: string, listen = '127.0.0.1:7000', agentAddress = '10.0.0.1:15020'): Mapping {
  return {
    id,
    binding: id,
    workloadId: 'app1',
    virtual: { workloadId: 'app1', name: 'modem0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen },
    physicalId: 'gw1/usb-1',
    hostId: 'gw1',
    devicePath: '/dev/ttyUSB0',
    kind: 'DEVICE_KIND_SERIAL',
    settings: {},
    agentAddress,
    policy: { ...EMPTY_POLICY, workloads: ['app1'], access: 'ACCESS_READ_WRITE', sharing: 'SHARING_MODE_EXCLUSIVE', queueDepth: 64 },
    serial: { baudRate: 115200, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' },
    version: '1',
    adaptiveLimit: null,
    roaming: false,
  };
}

const byId = (...ms: Mapping[]): Map<string, Mapping> => new Map(ms.map((m) => [m.id, m]));

describe('sidecar: mapping diff', () => {
  it('is empty between equal sets, whatever the key order of the objects', () => {
    const a = mapping('m1');
    const reordered = Object.fromEntries(Object.entries(structuredClone(a)).reverse()) as unknown as Mapping;
    assert.deepEqual(diffMappings(byId(a), byId(reordered)), { added: [], changed: [], removed: [] });
    assert.deepEqual(diffMappings(new Map(), new Map()), { added: [], changed: [], removed: [] });
  });

  it('sorts mappings into added, changed and removed by id', () => {
    const keep = mapping('keep');
    const gone = mapping('gone');
    const moved = mapping('moved', '127.0.0.1:7001');
    const movedNext = mapping('moved', '127.0.0.1:7002');
    const retargeted = mapping('retargeted');
    const retargetedNext = { ...mapping('retargeted', '127.0.0.1:7000', '10.0.0.2:15020'), version: '2' };
    const fresh = mapping('fresh');
    const diff = diffMappings(byId(keep, gone, moved, retargeted), byId(keep, movedNext, retargetedNext, fresh));
    assert.deepEqual(diff.added, [fresh]);
    assert.deepEqual(diff.removed, [gone]);
    assert.deepEqual(diff.changed, [
      { previous: moved, next: movedNext, listenChanged: true },
      { previous: retargeted, next: retargetedNext, listenChanged: false },
    ]);
  });

  it('sees a change deep inside a mapping (policy, serial settings, optional fields)', () => {
    const a = mapping('m1');
    const policy = { ...a, policy: { ...a.policy!, workloads: ['app1', 'app2'] } };
    const serial = { ...a, serial: { ...a.serial!, dtr: true } };
    const noPolicy = { ...a, policy: null };
    for (const next of [policy, serial, noPolicy]) {
      const diff = diffMappings(byId(a), byId(next));
      assert.equal(diff.changed.length, 1, JSON.stringify(next));
      assert.equal(diff.changed[0]!.listenChanged, false);
    }
  });

  it('applied to the previous set, always yields the next one', () => {
    const arb = fc.uniqueArray(
      fc.record({ id: fc.constantFrom('a', 'b', 'c', 'd', 'e'), port: fc.integer({ min: 7000, max: 7002 }), version: fc.constantFrom('1', '2') }),
      { selector: (r) => r.id, maxLength: 5 },
    );
    const build = (rs: Array<{ id: string; port: number; version: string }>): Map<string, Mapping> =>
      byId(...rs.map((r) => ({ ...mapping(r.id, `127.0.0.1:${r.port}`), version: r.version })));
    fc.assert(
      fc.property(arb, arb, (before, after) => {
        const previous = build(before);
        const next = build(after);
        const diff = diffMappings(previous, next);
        const result = new Map(previous);
        for (const m of diff.removed) result.delete(m.id);
        for (const c of diff.changed) {
          assert.equal(c.listenChanged, c.previous.virtual!.listen !== c.next.virtual!.listen);
          result.set(c.next.id, c.next);
        }
        for (const m of diff.added) result.set(m.id, m);
        assert.deepEqual(result, next);
        // Nothing unchanged is reported.
        for (const c of diff.changed) assert.notDeepEqual(c.previous, c.next);
      }),
    );
  });
});
