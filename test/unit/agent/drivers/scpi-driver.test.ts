import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ScpiDriver, scpiSettings } from '../../../../agent/drivers/scpi-driver';
import { DeviceError, ValidationError } from '../../../../src/errors';
import type { SerialConfig } from '../../../../src/proto/types';

function settings(values: Record<string, string>, at = '/dev/ttyUSB0'): ReturnType<typeof scpiSettings> {
  return scpiSettings(at, { serial: null, settings: values });
}

function refuses(values: Record<string, string>, field: string, reason: RegExp): void {
  assert.throws(
    () => settings(values),
    (err: unknown) => err instanceof ValidationError && err.field === field && reason.test(err.message),
  );
}

describe('agent/drivers/scpi-driver (settings and listing)', () => {
  describe('settings', () => {
    it('defaults: usbtmc for usbtmc paths, serial for the rest, \\n, 2000 ms, no error checks', () => {
      assert.deepEqual(settings({}, '/dev/usbtmc0'), { transport: 'usbtmc', terminator: '\n', timeoutMs: 2000, checkErrors: false });
      assert.equal(settings({}, '/dev/ttyUSB0').transport, 'serial');
      assert.equal(settings({ transport: 'serial' }, '/dev/usbtmc3').transport, 'serial');
    });

    it('takes terminators as escapes or as the characters themselves', () => {
      assert.equal(settings({ terminator: '\\r\\n' }).terminator, '\r\n');
      assert.equal(settings({ terminator: '\r\n' }).terminator, '\r\n');
      assert.equal(settings({ terminator: '\\r' }).terminator, '\r');
      assert.equal(settings({ terminator: '\\n' }).terminator, '\n');
    });

    it('refuses unknown names and bad values, naming the setting', () => {
      refuses({ baudRate: '9600' }, 'settings.baudRate', /is not a setting of the scpi driver/);
      refuses({ transport: 'gpib' }, 'settings.transport', /not one of usbtmc, serial/);
      refuses({ terminator: ';' }, 'settings.terminator', /not one of/);
      refuses({ terminator: '\\n\\r' }, 'settings.terminator', /"\\n\\r" is not one of/);
      refuses({ terminator: '' }, 'settings.terminator', /not one of/);
      refuses({ timeoutMs: '5' }, 'settings.timeoutMs', /from 10 to 600000/);
      refuses({ timeoutMs: '1.5e3x' }, 'settings.timeoutMs', /not a number/);
      refuses({ timeoutMs: '100.5' }, 'settings.timeoutMs', /whole number/);
      refuses({ checkErrors: 'yes' }, 'settings.checkErrors', /not true or false/);
    });

    it('validate() also checks the serial line settings', () => {
      const driver = new ScpiDriver();
      const serial: SerialConfig = {
        baudRate: 19200,
        dataBits: 9,
        parity: 'PARITY_NONE',
        stopBits: 'STOP_BITS_ONE',
        flowControl: 'FLOW_CONTROL_NONE',
      };
      assert.throws(
        () => driver.validate({ serial, settings: {} }),
        (err: unknown) => err instanceof ValidationError && err.field === 'serial.dataBits',
      );
      driver.validate({ serial: { ...serial, dataBits: 7 }, settings: { checkErrors: 'true' } });
    });
  });

  describe('list()', () => {
    let root: string;

    beforeEach(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-scpi-sys-'));
    });

    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    /** sysfs as the kernel lays it out: class/usbmisc/usbtmcN/device links to the interface under its USB device. */
    function addUsbtmc(name: string, usbDevice: string, attributes: Record<string, string>): void {
      const device = path.join(root, 'devices/pci0000:00/usb1', usbDevice);
      fs.mkdirSync(path.join(device, `${usbDevice}:1.0`), { recursive: true });
      for (const [file, value] of Object.entries(attributes)) fs.writeFileSync(path.join(device, file), value);
      fs.mkdirSync(path.join(root, 'class/usbmisc', name), { recursive: true });
      fs.symlinkSync(path.join(device, `${usbDevice}:1.0`), path.join(root, 'class/usbmisc', name, 'device'));
    }

    it('lists usbtmc devices with the USB identity read through the device link', async () => {
      addUsbtmc('usbtmc1', '1-2', { idVendor: '2a8d\n', idProduct: '0101\n', manufacturer: 'Keysight Technologies\n', product: '34465A\n' });
      addUsbtmc('usbtmc0', '1-1', { idVendor: '0957\n', idProduct: '1a07\n', manufacturer: 'Agilent\n', product: 'DSO-X\n', serial: 'MY5\n' });
      fs.mkdirSync(path.join(root, 'class/usbmisc/hiddev0'));
      const devices = await new ScpiDriver({ sysRoot: root }).list();
      assert.deepEqual(devices, [
        {
          path: '/dev/usbtmc0',
          kind: 'DEVICE_KIND_LAB_CARD',
          deviceId: 'usb-0957:1a07:MY5',
          capabilities: ['scpi', 'usbtmc'],
          labels: { idVendor: '0957', idProduct: '1a07', manufacturer: 'Agilent', product: 'DSO-X', serial: 'MY5' },
        },
        {
          path: '/dev/usbtmc1',
          kind: 'DEVICE_KIND_LAB_CARD',
          capabilities: ['scpi', 'usbtmc'],
          labels: { idVendor: '2a8d', idProduct: '0101', manufacturer: 'Keysight Technologies', product: '34465A' },
        },
      ]);
    });

    it('is empty without the usbmisc class (no usbtmc driver loaded)', async () => {
      assert.deepEqual(await new ScpiDriver({ sysRoot: root }).list(), []);
    });

    it('refuses an attribute that is not one line', async () => {
      addUsbtmc('usbtmc0', '1-1', { idVendor: '0957\n', product: 'two\nlines\n' });
      await assert.rejects(
        new ScpiDriver({ sysRoot: root }).list(),
        (err: unknown) => err instanceof DeviceError && /product: not a one-line attribute/.test(err.message),
      );
    });
  });
});
