import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import fc from 'fast-check';
import type { DeviceConfig, DeviceHandle } from '../../../../agent/drivers/device-driver';
import { hidAvailability, NodeHidBackend } from '../../../../agent/drivers/hid-backend';
import { HidDriver } from '../../../../agent/drivers/hid-driver';
import { DeviceError, UnavailableError, ValidationError } from '../../../../src/errors';
import { CommandOp, type DeviceCommand } from '../../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../../src/socket-plane/device-event';
import { FakeHidBackend, type FakeHidDevice, type FakeHidSpec } from '../../../helpers/fake-hid';

const RECEIVER: FakeHidSpec = {
  path: '/dev/hidraw0',
  vendorId: 0x046d,
  productId: 0xc52b,
  serialNumber: 'ABC123',
  manufacturer: 'Logitech',
  product: 'USB Receiver',
  interface: 2,
  collections: [
    { usagePage: 0xff00, usage: 0x0001 },
    { usagePage: 0xff00, usage: 0x0002 },
  ],
};

function config(settings: Record<string, string> = {}): DeviceConfig {
  return { serial: null, settings };
}

function hex(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function command(op: CommandOp, data: number[] = [], target = '', value = 0): DeviceCommand {
  return { op, target, value, data: Buffer.from(data) };
}

describe('agent/drivers/hid-driver', () => {
  let backend: FakeHidBackend;
  let driver: HidDriver;
  const handles: DeviceHandle[] = [];

  beforeEach(() => {
    backend = new FakeHidBackend();
    driver = new HidDriver(backend);
  });

  afterEach(async () => {
    await Promise.all(handles.splice(0).map((h) => h.close().catch(() => undefined)));
  });

  interface Opened {
    device: FakeHidDevice;
    handle: DeviceHandle;
    events: DeviceEvent[];
  }

  async function open(spec: FakeHidSpec, settings: Record<string, string> = {}): Promise<Opened> {
    const device = backend.plug(spec);
    const handle = await driver.open(spec.path, config(settings));
    handles.push(handle);
    const events: DeviceEvent[] = [];
    handle.onEvent((e) => events.push(e));
    return { device, handle, events };
  }

  describe('list()', () => {
    it('gives one device per path with its USB identity, labels and collections', async () => {
      backend.plug(RECEIVER);
      assert.equal((await backend.devices()).length, 2, 'node-hid lists each top-level collection');
      assert.deepEqual(await driver.list(), [
        {
          path: '/dev/hidraw0',
          kind: 'DEVICE_KIND_HID',
          deviceId: 'usb-046d:c52b:ABC123',
          capabilities: ['hid', 'input-reports', 'output-reports', 'feature-reports', 'usage=0xff00:0x0001', 'usage=0xff00:0x0002'],
          labels: {
            vendorId: '046d',
            productId: 'c52b',
            manufacturer: 'Logitech',
            product: 'USB Receiver',
            serialNumber: 'ABC123',
            usagePage: '0xff00',
            usage: '0x0001',
            interface: '2',
          },
        },
      ]);
    });

    it('leaves the identity to the path without a serial number, and labels only what node-hid gave', async () => {
      backend.plug({ path: '/dev/hidraw3', vendorId: 0x16c0, productId: 0x05df, interface: -1 });
      const [found] = await driver.list();
      assert.equal('deviceId' in found, false);
      assert.deepEqual(found.labels, { vendorId: '16c0', productId: '05df' });
      assert.deepEqual(found.capabilities.slice(4), ['usage=0x0000:0x0000']);
    });

    it('tells apart the interfaces of a composite device, which share a serial number', async () => {
      backend.plug({ ...RECEIVER, path: '/dev/hidraw1', interface: 0 });
      backend.plug({ ...RECEIVER, path: '/dev/hidraw2', interface: 1 });
      backend.plug({ ...RECEIVER, path: '/dev/hidraw4', serialNumber: 'OTHER' });
      const ids = (await driver.list()).map((d) => d.deviceId);
      assert.deepEqual(ids, ['usb-046d:c52b:ABC123:if0', 'usb-046d:c52b:ABC123:if1', 'usb-046d:c52b:OTHER']);
    });

    it('gives every path once, and identities no two devices share (property)', async () => {
      const spec = fc.record({
        vendorId: fc.constantFrom(0x046d, 0x16c0),
        productId: fc.constantFrom(0xc52b, 0x05df),
        serialNumber: fc.option(fc.constantFrom('A', 'B:1', ''), { nil: undefined }),
        interface: fc.integer({ min: -1, max: 2 }),
        collections: fc.array(fc.record({ usagePage: fc.nat(0xffff), usage: fc.nat(0xffff) }), { minLength: 1, maxLength: 3 }),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(spec, { maxLength: 8 }), async (specs) => {
          const fake = new FakeHidBackend();
          specs.forEach((s, i) => fake.plug({ ...s, path: `/dev/hidraw${i}` }));
          const found = await new HidDriver(fake).list();
          assert.deepEqual(found.map((d) => d.path), specs.map((_, i) => `/dev/hidraw${i}`));
          const ids = found.flatMap((d) => (d.deviceId === undefined ? [] : [d.deviceId]));
          assert.equal(new Set(ids).size, ids.length, 'identities are unique');
          const usbIds = specs.map((s) => s.serialNumber && `usb-${hex(s.vendorId)}:${hex(s.productId)}:${s.serialNumber}`);
          found.forEach((d, i) => {
            const usbId = usbIds[i];
            if (!usbId) assert.equal(d.deviceId, undefined);
            else if (usbIds.indexOf(usbId) === usbIds.lastIndexOf(usbId)) assert.equal(d.deviceId, usbId);
            else if (d.deviceId !== undefined) assert.equal(d.deviceId, `${usbId}:if${specs[i].interface}`);
            assert.equal(d.capabilities.filter((c) => c.startsWith('usage=')).length, specs[i].collections.length);
          });
        }),
      );
    });

    it('rejects with a DeviceError when the listing fails', async () => {
      backend.devices = () => Promise.reject(new Error('hid_enumerate failed'));
      await assert.rejects(driver.list(), { name: 'DeviceError', message: 'cannot list HID devices: hid_enumerate failed' });
    });
  });

  describe('settings', () => {
    it('accepts numberedReports true/false and refuses anything else', async () => {
      driver.validate(config({ numberedReports: 'true' }));
      driver.validate(config());
      assert.throws(() => driver.validate(config({ reportSize: '8' })), { name: 'ValidationError', field: 'settings.reportSize' });
      assert.throws(() => driver.validate(config({ numberedReports: 'yes' })), /settings.numberedReports: "yes" is not true or false/);
      backend.plug(RECEIVER);
      await assert.rejects(driver.open(RECEIVER.path, config({ numbered: 'true' })), ValidationError);
      assert.equal(backend.devicesPlugged[0].ports.length, 0, 'nothing was opened');
    });

    it('reads back what the device is and how it is read', async () => {
      const { handle } = await open(RECEIVER, { numberedReports: 'true' });
      const expected = { vendorId: '046d', productId: 'c52b', serialNumber: 'ABC123', numberedReports: 'true' };
      assert.deepEqual(await handle.configuration(), expected);
      await handle.update(config());
      assert.equal((await handle.configuration()).numberedReports, 'false');
      await assert.rejects(handle.update(config({ bogus: '1' })), ValidationError);
    });
  });

  describe('input reports', () => {
    it('arrive as HidInputReport events with the report bytes, value 0 without numbered reports', async () => {
      const { device, events } = await open(RECEIVER);
      const before = Date.now();
      device.input([0x00, 0x01, 0xfe, 0x7f]);
      device.input([0x02]);
      assert.equal(events.length, 2);
      assert.equal(events[0].type, DeviceEventType.HidInputReport);
      assert.equal(events[0].value, 0);
      assert.deepEqual([...events[0].data], [0x00, 0x01, 0xfe, 0x7f]);
      assert.deepEqual([...events[1].data], [0x02]);
      assert.ok(Math.abs(events[0].timestampMs - before) < 60_000, 'a wall-clock timestamp');
    });

    it('carry the report id as their value with numberedReports, which update() switches', async () => {
      const { device, handle, events } = await open(RECEIVER, { numberedReports: 'true' });
      device.input([0x05, 0xaa]);
      await handle.update(config({ numberedReports: 'false' }));
      device.input([0x05, 0xbb]);
      assert.deepEqual(events.map((e) => [e.value, [...e.data]]), [[5, [0x05, 0xaa]], [0, [0x05, 0xbb]]]);
    });
  });

  describe('commands', () => {
    it('sends output and feature reports with the exact bytes', async () => {
      const { device, handle } = await open(RECEIVER);
      assert.deepEqual(await handle.execute(command(CommandOp.HidWrite, [0x00, 0x10, 0xff, 0x00])), { value: 4, data: Buffer.alloc(0) });
      assert.equal((await handle.execute(command(CommandOp.HidSendFeature, [0x03, 0x01, 0x02]))).value, 3);
      assert.deepEqual(device.outputReports, [Buffer.from([0x00, 0x10, 0xff, 0x00])]);
      assert.deepEqual(device.featureReportsSent, [Buffer.from([0x03, 0x01, 0x02])]);
    });

    it('gets a feature report: value the report id, target the length ("" for 64)', async () => {
      const { device, handle } = await open(RECEIVER);
      device.setFeatureReport([0x07, 0x10, 0x20, 0x30, 0x40]);
      const whole = await handle.execute(command(CommandOp.HidGetFeature, [], '', 7));
      assert.deepEqual([...whole.data], [0x07, 0x10, 0x20, 0x30, 0x40]);
      assert.equal(whole.value, 5);
      const part = await handle.execute(command(CommandOp.HidGetFeature, [], '3', 7));
      assert.deepEqual([...part.data], [0x07, 0x10, 0x20]);
      assert.deepEqual(device.featureRequests, [[7, 64], [7, 3]]);
    });

    it('refuses malformed commands before they reach the device', async () => {
      const { device, handle } = await open(RECEIVER);
      const invalid = (field: string) => (err: unknown) => err instanceof ValidationError && err.field === field;
      await assert.rejects(handle.execute(command(CommandOp.HidWrite, [])), invalid('command.data'));
      await assert.rejects(handle.execute(command(CommandOp.HidSendFeature, [])), invalid('command.data'));
      await assert.rejects(handle.execute({ ...command(CommandOp.HidWrite), data: Buffer.alloc(16386) }), invalid('command.data'));
      for (const value of [256, -1, 1.5, NaN]) {
        await assert.rejects(handle.execute(command(CommandOp.HidGetFeature, [], '', value)), invalid('command.value'));
      }
      for (const target of ['abc', '0', '16385', '-4', ' 8', '8.0', '1e3']) {
        await assert.rejects(handle.execute(command(CommandOp.HidGetFeature, [], target, 1)), invalid('command.target'), target);
      }
      assert.deepEqual([device.outputReports, device.featureReportsSent, device.featureRequests], [[], [], []]);
    });

    it('gives node-hid\'s message in a DeviceError when the device refuses', async () => {
      const { device, handle } = await open(RECEIVER);
      await assert.rejects(handle.execute(command(CommandOp.HidGetFeature, [], '', 9)), {
        name: 'DeviceError',
        message: '/dev/hidraw0: cannot get feature report: could not get feature report from device: Broken pipe',
      });
      device.stalled = true;
      await assert.rejects(handle.execute(command(CommandOp.HidWrite, [0, 1])), {
        name: 'DeviceError',
        message: '/dev/hidraw0: cannot write output report: Cannot write to hid device: Broken pipe',
      });
      await assert.rejects(handle.execute(command(CommandOp.HidSendFeature, [1, 1])), /send feature report to device: Broken pipe/);
    });

    it('answers an operation of another kind of device with UNIMPLEMENTED', async () => {
      const { handle } = await open(RECEIVER);
      for (const op of [CommandOp.SerialBreak, CommandOp.GpioSet, CommandOp.ScpiQuery]) {
        await assert.rejects(handle.execute(command(op, [1])), { code: 'UNIMPLEMENTED', message: `${CommandOp[op]} is not a HID command` });
      }
    });

    it('refuses a write to the stream: a HID device speaks in reports', async () => {
      const { handle } = await open(RECEIVER);
      handle.stream.write(Buffer.from([1]));
      const [err] = (await once(handle.stream, 'error')) as [Error & { code?: string }];
      assert.equal(err.code, 'UNIMPLEMENTED');
    });
  });

  describe('unplug and close', () => {
    it('reports an unplugged device as a DeviceError event, an errored stream and a closed device', async () => {
      const { device, handle, events } = await open(RECEIVER);
      const streamError = once(handle.stream, 'error');
      // events.once() of 'close' would reject on the 'error' before it
      const closed = new Promise((resolve) => handle.stream.on('close', resolve));
      assert.doesNotThrow(() => device.unplug());
      const [err] = (await streamError) as [Error];
      await closed;
      const reason = 'could not read from HID device: hid_read_timeout: unexpected poll error (device disconnected)';
      assert.ok(err instanceof DeviceError);
      assert.equal(err.message, `/dev/hidraw0: ${reason}`);
      assert.equal(events.length, 1);
      assert.equal(events[0].type, DeviceEventType.DeviceError);
      assert.equal(events[0].data.toString(), reason);
      await handle.close();
      assert.equal(device.closeCalls, 1, 'the dead device is released once');
      const afterwards = handle.execute(command(CommandOp.HidWrite, [0, 1]));
      await assert.rejects(afterwards, { name: 'DeviceError', message: '/dev/hidraw0: device is closed' });
    });

    it('closes the node-hid device exactly once however often close() is called', async () => {
      const { device, handle, events } = await open(RECEIVER);
      const closed = once(handle.stream, 'close');
      const closing = Promise.all([handle.close(), handle.close()]);
      device.input([0, 1]); // read before the close, delivered during it
      await closing;
      await handle.close();
      await closed;
      assert.equal(device.closeCalls, 1);
      assert.equal(device.ports.length, 0);
      device.input([0, 1]);
      device.unplug();
      assert.deepEqual(events, [], 'a closed device reports nothing');
    });

    it('rejects the open of a device that is not there with a DeviceError', async () => {
      await assert.rejects(driver.open('/dev/hidraw9', config()), {
        name: 'DeviceError',
        message: 'cannot open /dev/hidraw9: cannot open device with path /dev/hidraw9: No such file or directory',
      });
    });
  });

  describe('production backend (node-hid)', () => {
    it('loads node-hid on this machine and lists its HID devices', async function () {
      const availability = hidAvailability();
      if (!availability.loaded) {
        console.log(`skipped: HID unavailable: ${availability.error}`);
        this.skip();
      }
      const found = await new HidDriver().list();
      assert.ok(Array.isArray(found));
      for (const d of found) assert.equal(d.kind, 'DEVICE_KIND_HID');
      await assert.rejects(new HidDriver().open('/dev/hidraw-missing', config()), (err: unknown) => {
        assert.ok(err instanceof DeviceError);
        assert.match(err.message, /^cannot open \/dev\/hidraw-missing: cannot open device with path \/dev\/hidraw-missing/);
        return true;
      });
    });

    it('reports "HID unavailable" where node-hid cannot load, without throwing', async () => {
      let loads = 0;
      const backend = new NodeHidBackend(() => {
        loads++;
        throw new Error('libusb-1.0.so.0: cannot open shared object file: No such file or directory');
      });
      const reason = 'HID unavailable: libusb-1.0.so.0: cannot open shared object file: No such file or directory';
      const unavailable = (err: unknown) => err instanceof UnavailableError && err.message === reason;
      const unavailableDriver = new HidDriver(backend);
      await assert.rejects(unavailableDriver.list(), unavailable);
      await assert.rejects(unavailableDriver.open('/dev/hidraw0', config()), unavailable);
      assert.deepEqual(backend.availability(), { loaded: false, error: reason.slice('HID unavailable: '.length) });
      assert.equal(loads, 1, 'the load is tried once');
    });
  });
});
