import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import {
  describeChannels,
  IioFormatError,
  listIioDeviceDirs,
  parseIioNumber,
  readChannel,
  readIioDevice,
} from '../../../../agent/drivers/iio-sysfs';
import { DeviceError } from '../../../../src/errors';
import { FakeIio } from '../../../helpers/fake-iio';

describe('agent/drivers/iio-sysfs', () => {
  describe('describeChannels', () => {
    it('finds indexed, unindexed, modified and differential channels with the scale and offset that apply', () => {
      const channels = describeChannels([
        'name', 'uevent', 'sampling_frequency', 'in_voltage_sampling_frequency',
        'in_voltage0_raw', 'in_voltage1_raw', 'in_voltage_scale', 'in_voltage1_scale', 'in_voltage0_offset', 'in_voltage_scale_available',
        'in_voltage0-voltage1_raw', 'in_voltage-voltage_scale',
        'in_accel_x_raw', 'in_accel_z_raw', 'in_accel_scale', 'in_accel_x_peak_raw',
        'in_temp_raw', 'in_temp_input',
        'in_humidityrelative_input', 'in_intensity_ir_raw', 'in_rot_quaternion_raw',
      ]);
      const brief = channels.map((c) => [c.name, c.type, c.unit, c.valueFile, c.scaleFile, c.offsetFile, c.divisor]);
      assert.deepEqual(brief, [
        ['accel_x', 'accel', 'm/s²', 'in_accel_x_raw', 'in_accel_scale', null, 1],
        ['accel_z', 'accel', 'm/s²', 'in_accel_z_raw', 'in_accel_scale', null, 1],
        ['humidityrelative', 'humidityrelative', 'm%', 'in_humidityrelative_input', null, null, 1],
        ['intensity_ir', 'intensity', '', 'in_intensity_ir_raw', null, null, 1],
        ['temp', 'temp', '°C', 'in_temp_raw', null, null, 1000],
        ['voltage0', 'voltage', 'mV', 'in_voltage0_raw', 'in_voltage_scale', 'in_voltage0_offset', 1],
        ['voltage0-voltage1', 'voltage', 'mV', 'in_voltage0-voltage1_raw', 'in_voltage-voltage_scale', null, 1],
        ['voltage1', 'voltage', 'mV', 'in_voltage1_raw', 'in_voltage1_scale', null, 1],
      ]);
    });

    it('finds nothing in a directory without readings', () => {
      assert.deepEqual(describeChannels(['name', 'uevent', 'buffer', 'trigger', 'in_voltage_scale']), []);
    });
  });

  describe('parseIioNumber', () => {
    it('reads what the kernel prints for integers and fractions', () => {
      assert.equal(parseIioNumber('25000\n', 'f'), 25000);
      assert.equal(parseIioNumber('-512\n', 'f'), -512);
      assert.equal(parseIioNumber('0.000598\n', 'f'), 0.000598);
      assert.equal(parseIioNumber('-0.250000000\n', 'f'), -0.25);
    });

    it('refuses empty files and what is not a plain number', () => {
      for (const [text, reason] of [['', /f: is empty/], ['\n', /is empty/], ['abc\n', /"abc" is not a number/], ['1e3\n', /not a number/],
        ['12 34\n', /not a number/], ['0x10\n', /not a number/], ['NaN\n', /not a number/], ['1.\n', /not a number/]] as const) {
        assert.throws(() => parseIioNumber(text, 'f'), (err: unknown) => err instanceof IioFormatError && err instanceof DeviceError && reason.test(err.message), text);
      }
    });

    it('reads back any integer or %d.%09u fraction (property)', () => {
      fc.assert(
        fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.nat(999_999_999), (int, nano) => {
          assert.equal(parseIioNumber(`${int}\n`, 'f'), int);
          const text = `${int}.${String(nano).padStart(9, '0')}`;
          assert.equal(parseIioNumber(`${text}\n`, 'f'), Number(text));
        }),
      );
    });
  });

  describe('reading a device', () => {
    let iio: FakeIio;

    beforeEach(() => {
      iio = FakeIio.create();
    });

    afterEach(() => {
      iio.cleanup();
    });

    it('computes (raw + offset) × scale in the unit of the type', async () => {
      const dir = iio.addDevice(0, 'ads1015', { in_voltage0_raw: 1000, in_voltage0_offset: 10, in_voltage_scale: 3, in_temp_raw: 23450, in_temp_scale: 1 });
      const device = await readIioDevice(dir);
      assert.equal(device.name, 'ads1015');
      assert.equal(device.label, null);
      const [temp, voltage0] = device.channels;
      assert.equal(await readChannel(dir, voltage0), 3030);
      assert.equal(await readChannel(dir, temp), 23.45);
    });

    it('takes a missing scale as 1 and a missing offset as 0', async () => {
      const dir = iio.addDevice(0, 'adc', { in_voltage0_raw: 1234 });
      const [ch] = (await readIioDevice(dir)).channels;
      assert.equal(await readChannel(dir, ch), 1234);
    });

    it('refuses a non-numeric or empty reading and reports a vanished file', async () => {
      const dir = iio.addDevice(0, 'adc', { in_voltage0_raw: 'busy\n', in_voltage1_raw: '', in_voltage2_raw: 7 });
      const [v0, v1, v2] = (await readIioDevice(dir)).channels;
      await assert.rejects(readChannel(dir, v0), (err: unknown) => err instanceof IioFormatError && /in_voltage0_raw: "busy" is not a number/.test(err.message));
      await assert.rejects(readChannel(dir, v1), (err: unknown) => err instanceof IioFormatError && /in_voltage1_raw: is empty/.test(err.message));
      iio.unlink(0, 'in_voltage2_raw');
      await assert.rejects(readChannel(dir, v2), (err: unknown) => err instanceof DeviceError && /in_voltage2_raw: ENOENT/.test(err.message));
    });

    it('refuses a device with an empty name and reports one that is gone', async () => {
      const dir = iio.addDevice(0, '', { in_voltage0_raw: 1 });
      await assert.rejects(readIioDevice(dir), (err: unknown) => err instanceof IioFormatError && /name: is empty/.test(err.message));
      iio.removeDevice(0);
      await assert.rejects(readIioDevice(dir), (err: unknown) => err instanceof DeviceError && /ENOENT/.test(err.message));
    });

    it('lists iio:deviceN entries in index order and nothing when there is no IIO directory', async () => {
      iio.addDevice(10, 'b', {});
      iio.addDevice(2, 'a', {});
      fs.mkdirSync(path.join(iio.root, 'trigger0'));
      assert.deepEqual(await listIioDeviceDirs(iio.root), [iio.devicePath(2), iio.devicePath(10)]);
      assert.deepEqual(await listIioDeviceDirs(path.join(iio.root, 'nowhere')), []);
    });
  });
});
