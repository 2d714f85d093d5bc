import * as assert from 'node:assert/strict';
import { type MappingPlan, MappingTable } from '../../../agent/mapping-table';
import { ValidationError } from '../../../src/errors';
import type { Mapping } from '../../../src/proto/types';
import { mapping } from '../../integration/agent/fake-control-plane';

/** A plan's difference in the order the configurator acts on it: removed, changed, added. */
function events(plan: MappingPlan): string[] {
  return [
    ...plan.removed.map((m) => `removed ${m.id}`),
    ...plan.changed.map(([m, old]) => `changed ${m.id} ${old.serial?.baudRate}->${m.serial?.baudRate}`),
    ...plan.added.map((m) => `added ${m.id}`),
  ];
}

/** Plans an update and commits what it asks for, as the configurator does when every device takes it. */
function apply(table: MappingTable, resources: readonly unknown[], version: string): MappingPlan {
  const plan = table.plan(resources, version);
  table.commit(plan.next, version);
  if (plan.problems.length > 0) throw new ValidationError(`mappings version ${version}`, plan.problems.join('; '));
  return plan;
}

describe('agent/mapping-table', () => {
  it('plans state-of-the-world updates as added / changed / removed', () => {
    const table = new MappingTable('gw1');
    assert.equal(table.version, undefined);
    let plan = apply(table, [mapping({ id: 'm1', devicePath: '/dev/ttyUSB0' }), mapping({ id: 'm2', devicePath: '/dev/ttyUSB1' })], '1');
    assert.deepEqual(events(plan), ['added m1', 'added m2']);
    assert.equal(table.version, '1');
    assert.equal(table.get('m1')?.devicePath, '/dev/ttyUSB0');

    const m1 = mapping({ id: 'm1', devicePath: '/dev/ttyUSB0' });
    m1.serial = { ...(m1.serial as NonNullable<Mapping['serial']>), baudRate: 115200 };
    plan = apply(table, [m1, mapping({ id: 'm3', devicePath: '/dev/ttyUSB2' })], '2');
    assert.deepEqual(events(plan), ['removed m2', 'changed m1 9600->115200', 'added m3']);
    assert.deepEqual(table.all().map((m) => m.id).sort(), ['m1', 'm3']);

    plan = apply(table, [m1, mapping({ id: 'm3', devicePath: '/dev/ttyUSB2' })], '3');
    assert.deepEqual(events(plan), [], 'an identical mapping is no change');
  });

  it('a plan changes nothing until it is committed', () => {
    const table = new MappingTable('gw1');
    apply(table, [mapping({ id: 'm1', devicePath: '/dev/ttyUSB0' })], '1');
    const plan = table.plan([mapping({ id: 'm2', devicePath: '/dev/ttyUSB1' })], '2');
    assert.deepEqual(events(plan), ['removed m1', 'added m2']);
    assert.deepEqual(table.all().map((m) => m.id), ['m1']);
    assert.equal(table.version, '1');
  });

  it('keeps the good mappings of an update and the last good version of a bad one, and names each problem (NACK)', () => {
    const table = new MappingTable('gw1');
    apply(table, [mapping({ id: 'm1', devicePath: '/dev/ttyUSB0' })], '1');
    const plan = table.plan(
      [
        mapping({ id: 'm1', devicePath: '' }),
        mapping({ id: 'm2', devicePath: '/dev/ttyUSB1', hostId: 'gw2' }),
        mapping({ id: 'm3', devicePath: '/dev/ttyUSB3' }),
        mapping({ id: 'm3', devicePath: '/dev/ttyUSB4' }),
        'not a mapping',
      ],
      '2',
    );
    table.commit(plan.next, '2');
    const message = plan.problems.join('; ');
    assert.match(message, /mapping m1: devicePath is empty/);
    assert.match(message, /mapping m2: is for host "gw2", not this host "gw1"/);
    assert.match(message, /mapping m3: appears twice/);
    assert.match(message, /mapping #4: is not a message/);
    assert.deepEqual(events(plan), ['added m3']);
    assert.equal(table.get('m1')?.devicePath, '/dev/ttyUSB0', 'last good m1 kept');
    assert.equal(table.get('m2'), undefined);
    assert.equal(table.get('m3')?.devicePath, '/dev/ttyUSB3');
    assert.equal(table.version, '2');
  });
});
