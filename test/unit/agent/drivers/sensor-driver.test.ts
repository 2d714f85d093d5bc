import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import type { DeviceConfig, DeviceHandle } from '../../../../agent/drivers/device-driver';
import { IIO_SYSFS_ROOT, SensorDriver } from '../../../../agent/drivers/sensor-driver';
import { DeviceError, UnsupportedError, ValidationError } from '../../../../src/errors';
import { CommandOp } from '../../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../../src/socket-plane/device-event';
import { FakeIio } from '../../../helpers/fake-iio';
import { waitFor } from '../helpers';

function config(settings: Record<string, string>): DeviceConfig {
  return { serial: null, settings };
}

function read(target: string): { op: CommandOp; target: string; value: number; data: Buffer } {
  return { op: CommandOp.SensorRead, target, value: 0, data: Buffer.alloc(0) };
}

function isValidation(pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof ValidationError && pattern.test(err.message);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Active timers, once mocha has armed its own test timeout (it does so after the test body starts). */
async function timeouts(): Promise<number> {
  await new Promise((r) => setImmediate(r));
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('agent/drivers/sensor-driver (sysfs-shaped IIO tree)', () => {
  let iio: FakeIio;
  let driver: SensorDriver;
  let handles: DeviceHandle[];
  let bme280: string;
  let ads1015: string;

  async function open(device: string, settings: Record<string, string>): Promise<{ handle: DeviceHandle; events: DeviceEvent[] }> {
    const handle = await driver.open(device, config(settings));
    handles.push(handle);
    handle.stream.on('error', () => undefined);
    const events: DeviceEvent[] = [];
    handle.onEvent((e) => events.push(e));
    return { handle, events };
  }

  const samples = (events: DeviceEvent[], source: string): number[] =>
    events.filter((e) => e.type === DeviceEventType.SensorSample && e.source === source).map((e) => e.value);

  beforeEach(() => {
    iio = FakeIio.create();
    bme280 = iio.addDevice(0, 'bme280', { in_temp_input: 23450, in_humidityrelative_input: 41250, in_pressure_input: '101.325\n' });
    ads1015 = iio.addDevice(1, 'ads1015', { in_voltage0_raw: 1000, in_voltage1_raw: 500, in_voltage_scale: 3, in_voltage1_scale: 2, in_voltage0_offset: 10 });
    driver = new SensorDriver({ sysfsRoot: iio.root });
    handles = [];
  });

  afterEach(async () => {
    for (const h of handles) await h.close();
    iio.cleanup();
  });

  it('lists each IIO device with its name and channels', async () => {
    iio.write(1, 'label', 'battery-monitor\n');
    const devices = await driver.list();
    assert.deepEqual(devices, [
      {
        path: bme280,
        kind: 'DEVICE_KIND_SENSOR',
        capabilities: ['sensor', 'channel=humidityrelative:m%', 'channel=pressure:kPa', 'channel=temp:°C'],
        labels: { name: 'bme280', iio: 'iio:device0' },
      },
      {
        path: ads1015,
        kind: 'DEVICE_KIND_SENSOR',
        capabilities: ['sensor', 'channel=voltage0:mV', 'channel=voltage1:mV'],
        labels: { name: 'ads1015', label: 'battery-monitor', iio: 'iio:device1' },
      },
    ]);
  });

  it('refuses unknown settings and bad values', () => {
    const refuses = (settings: Record<string, string>, pattern: RegExp): void => assert.throws(() => driver.validate(config(settings)), isValidation(pattern));
    refuses({ rate: '10' }, /settings\.rate: is not a setting of the sensor driver/);
    refuses({ samplePeriodMs: '5' }, /settings\.samplePeriodMs: 5 is below 10 ms/);
    refuses({ samplePeriodMs: 'often' }, /settings\.samplePeriodMs/);
    refuses({ samplePeriodMs: '12.5' }, /not a whole number/);
    refuses({ 'threshold.temp.above': 'hot' }, /settings\.threshold\.temp\.above: "hot" is not a number/);
    refuses({ 'threshold.temp.over': '3' }, /is not a setting/);
    refuses({ channels: 'temp,temp' }, /names a channel twice/);
    refuses({ channels: 'temp, ' }, /not a comma list/);
    refuses({ channels: 'pressure', 'threshold.temp.below': '3' }, /channel "temp" is not in settings\.channels/);
    driver.validate(config({ samplePeriodMs: '0', channels: 'temp', 'threshold.temp.above': '-1.5' }));
  });

  it('refuses channels the device does not have', async () => {
    await assert.rejects(driver.open(bme280, config({ channels: 'temp,co2' })), isValidation(/settings\.channels: bme280 .* has no channel "co2" \(it has humidityrelative, pressure, temp\)/));
    await assert.rejects(driver.open(bme280, config({ 'threshold.voltage0.above': '1' })), isValidation(/settings\.threshold\.voltage0\.above/));
    await assert.rejects(driver.open(iio.devicePath(7), config({})), DeviceError);
  });

  it('reads a channel on demand in its unit', async () => {
    const { handle } = await open(bme280, {});
    assert.deepEqual(await handle.execute(read('temp')), { value: 23.45, data: Buffer.from('°C') });
    assert.deepEqual(await handle.execute(read('humidityrelative')), { value: 41250, data: Buffer.from('m%') });
    assert.equal((await handle.execute(read('pressure'))).value, 101.325);
    const adc = await open(ads1015, { channels: 'voltage1' });
    assert.deepEqual(await adc.handle.execute(read('voltage1')), { value: 1000, data: Buffer.from('mV') });
    await assert.rejects(adc.handle.execute(read('voltage0')), isValidation(/target: no channel "voltage0" in this mapping \(channels: voltage1\)/));
    await assert.rejects(adc.handle.execute({ ...read('voltage1'), op: CommandOp.GpioGet }), UnsupportedError);
  });

  it('samples every channel with one timer and reports changes', async () => {
    const before = await timeouts();
    const { events } = await open(ads1015, { samplePeriodMs: '20' });
    assert.equal((await timeouts()) - before, 1);
    await waitFor(() => samples(events, 'voltage1').length >= 3, 'three samples of voltage1');
    assert.deepEqual(new Set(samples(events, 'voltage0')), new Set([3030]));
    assert.equal(events.find((e) => e.source === 'voltage1')?.data.toString(), 'mV');
    iio.write(1, 'in_voltage0_raw', 2000);
    await waitFor(() => samples(events, 'voltage0').includes(6030), 'the new reading');
  });

  it('skips a tick while the previous reading is still running', async () => {
    const original = fs.promises.readFile;
    let inFlight = 0;
    let most = 0;
    let reads = 0;
    // A slow device: every read of the reading takes 100 ms, five sample periods.
    fs.promises.readFile = (async (...args: Parameters<typeof original>) => {
      if (!String(args[0]).endsWith('in_voltage0_raw')) return original(...args);
      inFlight += 1;
      reads += 1;
      most = Math.max(most, inFlight);
      await sleep(100);
      inFlight -= 1;
      return original(...args);
    }) as typeof original;
    try {
      const { handle, events } = await open(ads1015, { samplePeriodMs: '20', channels: 'voltage0' });
      await sleep(550);
      await handle.close();
      assert.equal(most, 1);
      assert.ok(reads <= 7, `${reads} reads in 550 ms`);
      assert.ok(samples(events, 'voltage0').length >= 1);
    } finally {
      fs.promises.readFile = original;
    }
  });

  it('reports a threshold when it is crossed, not on every sample beyond it', async () => {
    const { handle, events } = await open(bme280, { samplePeriodMs: '10', channels: 'temp', 'threshold.temp.above': '30', 'threshold.temp.below': '10' });
    const thresholds = (): Array<[string, number]> => events.filter((e) => e.type === DeviceEventType.SensorThreshold).map((e) => [e.source, e.value]);
    const settle = async (value: number): Promise<void> => {
      iio.write(0, 'in_temp_input', value * 1000);
      await waitFor(() => samples(events, 'temp').filter((v) => v === value).length >= 3, `three samples at ${value}`);
    };
    await settle(31);
    await settle(32);
    await settle(25);
    await settle(35);
    await settle(5);
    assert.deepEqual(thresholds(), [
      ['temp:above', 31],
      ['temp:above', 35],
      ['temp:below', 5],
    ]);
    iio.write(0, 'in_temp_input', 40000);
    assert.equal((await handle.execute(read('temp'))).value, 40);
    assert.deepEqual(thresholds().at(-1), ['temp:above', 40]);
  });

  it('reads its configuration back and applies updates, restarting nothing on a refusal', async () => {
    const { handle, events } = await open(ads1015, { channels: 'voltage0', 'threshold.voltage0.above': '3000' });
    assert.deepEqual(await handle.configuration(), { samplePeriodMs: '0', channels: 'voltage0', 'threshold.voltage0.above': '3000' });
    await sleep(50);
    assert.equal(events.length, 0, 'no sampling at period 0');
    await handle.update(config({ samplePeriodMs: '20' }));
    assert.deepEqual(await handle.configuration(), { samplePeriodMs: '20', channels: 'voltage0,voltage1' });
    await waitFor(() => samples(events, 'voltage1').length >= 2, 'samples after the update');
    await assert.rejects(handle.update(config({ samplePeriodMs: '20', channels: 'voltage9' })), isValidation(/no channel "voltage9"/));
    await assert.rejects(handle.update(config({ speed: 'fast' })), isValidation(/settings\.speed/));
    assert.equal((await handle.configuration()).channels, 'voltage0,voltage1');
    await handle.update(config({}));
    const count = events.length;
    await sleep(100);
    assert.equal(events.length, count, 'period 0 stops sampling');
  });

  it('reports a malformed reading once and keeps sampling the other channels', async () => {
    const { events } = await open(ads1015, { samplePeriodMs: '10' });
    iio.write(1, 'in_voltage1_raw', 'EIO\n');
    await waitFor(() => events.some((e) => e.type === DeviceEventType.DeviceError), 'the error event');
    const atError = samples(events, 'voltage0').length;
    await waitFor(() => samples(events, 'voltage0').length >= atError + 5, 'more samples of voltage0');
    const errors = events.filter((e) => e.type === DeviceEventType.DeviceError);
    assert.equal(errors.length, 1);
    assert.match(errors[0].data.toString(), /in_voltage1_raw: "EIO" is not a number/);
    iio.write(1, 'in_voltage1_raw', 600);
    await waitFor(() => samples(events, 'voltage1').includes(1200), 'voltage1 back');
  });

  it('reports a device that goes away while sampling: DeviceError event, then the stream fails', async () => {
    const { handle, events } = await open(bme280, { samplePeriodMs: '10' });
    const failed = new Promise<Error>((resolve) => handle.stream.once('error', resolve));
    const closed = new Promise<void>((resolve) => handle.stream.once('close', resolve));
    await waitFor(() => events.length > 0, 'a sample');
    iio.removeDevice(0);
    const err = await failed;
    await closed;
    assert.ok(err instanceof DeviceError);
    assert.match(err.message, /IIO device .*iio:device0 is gone/);
    assert.equal(events.filter((e) => e.type === DeviceEventType.DeviceError).length, 1);
    const count = events.length;
    await sleep(50);
    assert.equal(events.length, count, 'no sampling after the device went');
    await assert.rejects(handle.execute(read('temp')), /is closed/);
  });

  it('reports a device that went away when a reading is asked for', async () => {
    const { handle, events } = await open(bme280, {});
    const failed = new Promise<Error>((resolve) => handle.stream.once('error', resolve));
    iio.removeDevice(0);
    await assert.rejects(handle.execute(read('temp')), (err: unknown) => err instanceof DeviceError && /is gone/.test(err.message));
    assert.ok((await failed) instanceof DeviceError);
    assert.equal(events[0].type, DeviceEventType.DeviceError);
  });

  it('closes idempotently and leaves no timer behind', async () => {
    const before = await timeouts();
    const { handle } = await open(ads1015, { samplePeriodMs: '10' });
    const closed = new Promise<void>((resolve) => handle.stream.once('close', resolve));
    await handle.close();
    await handle.close();
    await closed;
    assert.equal(await timeouts(), before);
  });
});

describe('agent/drivers/sensor-driver (this machine)', () => {
  it('lists exactly the iio:deviceN entries of the real sysfs, none if there is no IIO', async () => {
    const real = fs.existsSync(IIO_SYSFS_ROOT) ? fs.readdirSync(IIO_SYSFS_ROOT).filter((e) => /^iio:device\d+$/.test(e)) : [];
    assert.equal((await new SensorDriver().list()).length, real.length);
  });
});
