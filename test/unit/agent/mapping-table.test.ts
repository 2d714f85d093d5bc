import * as assert from 'node:assert/strict';
import { MappingTable } from '../../../agent/mapping-table';
import type { Mapping } from '../../../src/proto/types';
import { mapping } from '../../integration/agent/fake-control-plane';

function record(table: MappingTable): string[] {
  const events: string[] = [];
  table.on('added', (m: Mapping) => events.push(`added ${m.id}`));
  table.on('changed', (m: Mapping, old: Mapping) => events.push(`changed ${m.id} ${old.serial?.baudRate}->${m.serial?.baudRate}`));
  table.on('removed', (m: Mapping) => events.push(`removed ${m.id}`));
  return events;
}

describe('agent/mapping-table', () => {
  it('applies state-of-the-world updates as added / changed / removed', () => {
    const table = new MappingTable('gw1');
    const events = record(table);
    assert.equal(table.version, undefined);
    table.apply([mapping({ id: 'm1', devicePath: '/dev/ttyUSB0' }), mapping({ id: 'm2', devicePath: '/dev/ttyUSB1' })], '1');
    assert.deepEqual(events, ['added m1', 'added m2']);
    assert.equal(table.version, '1');
    assert.equal(table.get('m1')?.devicePath, '/dev/ttyUSB0');

    events.length = 0;
    const m1 = mapping({ id: 'm1', devicePath: '/dev/ttyUSB0' });
    m1.serial = { ...(m1.serial as NonNullable<Mapping['serial']>), baudRate: 115200 };
    table.apply([m1, mapping({ id: 'm3', devicePath: '/dev/ttyUSB2' })], '2');
    assert.deepEqual(events, ['removed m2', 'changed m1 9600->115200', 'added m3']);
    assert.deepEqual(table.all().map((m) => m.id).sort(), ['m1', 'm3']);

    events.length = 0;
    table.apply([m1, mapping({ id: 'm3', devicePath: '/dev/ttyUSB2' })], '3');
    assert.deepEqual(events, [], 'an identical mapping is no change');
  });

  it('applies the good mappings of an update, keeps the last good version of a bad one, and throws (NACK)', () => {
    const table = new MappingTable('gw1');
    table.apply([mapping({ id: 'm1', devicePath: '/dev/ttyUSB0' })], '1');
    const events = record(table);
    assert.throws(
      () =>
        table.apply(
          [
            mapping({ id: 'm1', devicePath: '' }),
            mapping({ id: 'm2', devicePath: '/dev/ttyUSB1', hostId: 'gw2' }),
            mapping({ id: 'm3', devicePath: '/dev/ttyUSB3' }),
            mapping({ id: 'm3', devicePath: '/dev/ttyUSB4' }),
            'not a mapping',
          ],
          '2',
        ),
      (err: Error) => {
        assert.match(err.message, /mapping m1: devicePath is empty/);
        assert.match(err.message, /mapping m2: is for host "gw2", not this host "gw1"/);
        assert.match(err.message, /mapping m3: appears twice/);
        assert.match(err.message, /mapping #4: is not a message/);
        return true;
      },
    );
    assert.deepEqual(events, ['added m3']);
    assert.equal(table.get('m1')?.devicePath, '/dev/ttyUSB0', 'last good m1 kept');
    assert.equal(table.get('m2'), undefined);
    assert.equal(table.get('m3')?.devicePath, '/dev/ttyUSB3');
    assert.equal(table.version, '2');
  });
});
