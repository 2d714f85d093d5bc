import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { DeviceConfigurator, type MappingVerdict } from '../../../agent/device-configurator';
import { DeviceInventory } from '../../../agent/device-inventory';
import type { DeviceConfig, DeviceDriver, DeviceHandle, DiscoveredDevice } from '../../../agent/drivers/device-driver';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { SimulatedModemBinding } from '../../../agent/drivers/simulated-modem';
import { MappingTable } from '../../../agent/mapping-table';
import { DeviceError, ValidationError } from '../../../src/errors';
import type { Mapping } from '../../../src/proto/types';
import { Stats } from '../../../src/telemetry/stats';
import { mapping } from '../../integration/agent/fake-control-plane';
import { testLogger } from './helpers';

/**
 * A line device whose open handle takes baud-rate changes, except the rates it is told to refuse,
 * and can hold a change until released: the DeviceDriver interface the serial driver ships behind.
 */
class LineDriver implements DeviceDriver {
  readonly kind = 'DEVICE_KIND_SERIAL' as const;
  /** Baud rates each path took, in order. */
  readonly applied: Array<[string, number]> = [];
  readonly refusedRates = new Set<number>();
  private held: Array<() => void> | undefined;

  validate(config: DeviceConfig): void {
    if (config.settings.bogus !== undefined) throw new ValidationError('settings.bogus', 'is not a setting of the line driver');
  }

  open(path: string): Promise<DeviceHandle> {
    return Promise.resolve({
      path,
      stream: new PassThrough(),
      onEvent: () => undefined,
      update: async (config: DeviceConfig): Promise<void> => {
        if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
        const rate = config.serial?.baudRate ?? 0;
        if (this.refusedRates.has(rate)) throw new DeviceError(`cannot set ${rate} baud`);
        this.applied.push([path, rate]);
      },
      execute: () => Promise.reject(new DeviceError('no commands here')),
      configuration: () => Promise.resolve({}),
      close: () => Promise.resolve(),
    });
  }

  list(): Promise<DiscoveredDevice[]> {
    return Promise.resolve([]);
  }

  /** Changes waiting for release(). */
  get waiting(): number {
    return this.held?.length ?? 0;
  }

  /** Changes wait until release(). */
  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const go of held) go();
  }
}

const log = testLogger();

function inventory(driver: DeviceDriver, paths: readonly string[]): DeviceInventory {
  const stats = new Stats({});
  const devices = new DeviceInventory((device, onConfiguration) => ({ path: device.path, driver, stats, log, onConfiguration }));
  for (const path of paths) devices.add({ path, deviceId: path, kind: 'DEVICE_KIND_SERIAL', capabilities: ['serial'], labels: {} });
  return devices;
}

function atBaud(m: Mapping, baudRate: number): Mapping {
  return { ...m, serial: { ...(m.serial as NonNullable<Mapping['serial']>), baudRate } };
}

function nackMessage(verdict: MappingVerdict): string {
  assert.equal(verdict.ack, false, 'the update is NACKed');
  return verdict.ack ? '' : verdict.error.message;
}

describe('agent/device-configurator', () => {
  it('ACKs an update every mapping and device takes, and the table holds it at its version', async () => {
    const modems = new SimulatedModemBinding(['modem0', 'modem1']);
    const mappings = new MappingTable('gw1');
    const configurator = new DeviceConfigurator({ mappings, devices: inventory(new SerialDriver(modems), ['sim:modem0', 'sim:modem1']), log });
    const set = [mapping({ id: 'm1', devicePath: 'sim:modem0' }), mapping({ id: 'm2', devicePath: 'sim:modem1', settings: { modemPollMs: '20' } })];
    assert.deepEqual(await configurator.apply(set, '1'), { ack: true, version: '1' });
    assert.equal(mappings.version, '1');
    assert.deepEqual(mappings.all(), set);
  });

  it('NACKs with each reason (the table\'s and the driver\'s), applies the good mappings, keeps a refused one\'s last good version', async () => {
    const modems = new SimulatedModemBinding(['modem0', 'modem1']);
    const mappings = new MappingTable('gw1');
    const configurator = new DeviceConfigurator({ mappings, devices: inventory(new SerialDriver(modems), ['sim:modem0', 'sim:modem1']), log });
    const m1 = mapping({ id: 'm1', devicePath: 'sim:modem0' });
    assert.equal((await configurator.apply([m1], '1')).ack, true);

    const message = nackMessage(
      await configurator.apply(
        [
          { ...m1, settings: { modemPollMillis: '5' } },
          mapping({ id: 'm2', devicePath: 'sim:modem1', settings: { modemPollMillis: '5' } }),
          mapping({ id: 'm3', devicePath: 'sim:modem1' }),
          mapping({ id: 'm4', devicePath: 'sim:modem1', hostId: 'gw2' }),
        ],
        '2',
      ),
    );
    assert.match(message, /^mappings version 2: /);
    assert.match(message, /mapping m1: settings\.modemPollMillis: is not a setting of the serial driver/);
    assert.match(message, /mapping m2: settings\.modemPollMillis: is not a setting of the serial driver/);
    assert.match(message, /mapping m4: is for host "gw2", not this host "gw1"/);
    assert.doesNotMatch(message, /mapping m3/);
    assert.deepEqual(mappings.get('m1'), m1, 'm1 keeps its last good version');
    assert.equal(mappings.get('m2'), undefined, 'a new mapping the driver refuses stays out');
    assert.equal(mappings.get('m3')?.devicePath, 'sim:modem1', 'the good mapping of the update is applied');
    assert.equal(mappings.version, '2');
  });

  it('a change a device fails half-way through an update leaves that mapping and its device as they were; the others change', async () => {
    const driver = new LineDriver();
    const devices = inventory(driver, ['/dev/a', '/dev/b']);
    const mappings = new MappingTable('gw1');
    const configurator = new DeviceConfigurator({ mappings, devices, log });
    const ma = mapping({ id: 'ma', devicePath: '/dev/a' });
    const mb = mapping({ id: 'mb', devicePath: '/dev/b' });
    assert.equal((await configurator.apply([ma, mb], '1')).ack, true);
    // Sessions on both devices: a change of line settings goes to the open device.
    const portA = await devices.get('/dev/a')?.host.open(ma);
    const portB = await devices.get('/dev/b')?.host.open(mb);
    driver.refusedRates.add(57600);

    const message = nackMessage(await configurator.apply([atBaud(ma, 19200), atBaud(mb, 57600), mapping({ id: 'mc', devicePath: '/dev/a' })], '2'));
    assert.equal(message, 'mappings version 2: mapping mb: device /dev/b refused the configuration: cannot set 57600 baud');
    assert.deepEqual(driver.applied, [['/dev/a', 19200]], 'only device a changed');
    assert.deepEqual(mappings.get('mb'), mb, 'mb is as it was');
    assert.equal(mappings.get('ma')?.serial?.baudRate, 19200);
    assert.equal(mappings.get('mc')?.devicePath, '/dev/a');
    assert.equal(portB?.destroyed, false, 'the session of the refused change goes on');
    assert.equal(portA?.destroyed, false, 'so does the changed one');
    portA?.destroy();
    portB?.destroy();
  });

  it('resets the sessions of a mapping withdrawn or moved to another device, and only those', async () => {
    const driver = new LineDriver();
    const devices = inventory(driver, ['/dev/a', '/dev/b', '/dev/c']);
    const mappings = new MappingTable('gw1');
    const configurator = new DeviceConfigurator({ mappings, devices, log });
    const gone = mapping({ id: 'gone', devicePath: '/dev/a' });
    const moving = mapping({ id: 'moving', devicePath: '/dev/c' });
    const staying = mapping({ id: 'staying', devicePath: '/dev/b' });
    await configurator.apply([gone, moving, staying], '1');
    const ports = await Promise.all([gone, moving, staying].map((m) => devices.get(m.devicePath)?.host.open(m)));
    assert.equal((await configurator.apply([{ ...moving, devicePath: '/dev/b' }, { ...staying, policy: null, binding: 'renamed' }], '2')).ack, true);
    assert.deepEqual(
      ports.map((p) => p?.destroyed),
      [true, true, false],
    );
    assert.equal(mappings.get('moving')?.devicePath, '/dev/b');
    for (const p of ports) p?.destroy();
  });

  it('applies updates one after the other: a second waits for the first\'s device changes and is planned against its result', async () => {
    const driver = new LineDriver();
    const devices = inventory(driver, ['/dev/a']);
    const mappings = new MappingTable('gw1');
    const configurator = new DeviceConfigurator({ mappings, devices, log });
    const ma = mapping({ id: 'ma', devicePath: '/dev/a' });
    await configurator.apply([ma], '1');
    const port = await devices.get('/dev/a')?.host.open(ma);
    driver.hold();
    const first = configurator.apply([atBaud(ma, 19200)], '2');
    const second = configurator.apply([atBaud(ma, 38400)], '3');
    await new Promise((r) => setImmediate(r));
    assert.equal(mappings.version, '1', 'nothing is committed while the device is changing');
    assert.equal(driver.waiting, 1, 'the second update has not reached the device');
    driver.release();
    assert.deepEqual([await first, await second], [{ ack: true, version: '2' }, { ack: true, version: '3' }]);
    assert.deepEqual(driver.applied, [['/dev/a', 19200], ['/dev/a', 38400]]);
    assert.equal(mappings.get('ma')?.serial?.baudRate, 38400);
    port?.destroy();
  });
});
