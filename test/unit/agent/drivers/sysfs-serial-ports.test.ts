import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { discoveredSerialPort, SerialDriver } from '../../../../agent/drivers/serial-driver';
import { SimulatedModemBinding } from '../../../../agent/drivers/simulated-modem';
import { listSysfsSerialPorts, readSysfsTtys, type SerialPortListing, serialPortsFromSysfs, type SysfsTty } from '../../../../agent/drivers/sysfs-serial-ports';
import { FakeSysfsTty, usbAttributes } from '../../../helpers/fake-sysfs-tty';

const byPath = (ports: SerialPortListing[]): Map<string, SerialPortListing> => new Map(ports.map((p) => [p.path, p]));

describe('agent/drivers/sysfs-serial-ports', () => {
  let sys: FakeSysfsTty;

  beforeEach(() => {
    sys = new FakeSysfsTty();
  });

  afterEach(() => sys.remove());

  /** A usb-serial adapter: USB device, interface `iface`, port directory with port_number, the tty under it. */
  function usbSerial(bus: string, name: string, iface = '00', portNumber = '0'): string {
    const ifaceDir = path.join(sys.root, 'devices', 'pci0000:00', 'usb1', bus, `${bus}:1.${Number.parseInt(iface, 16)}`);
    const port = sys.device(path.relative(path.join(sys.root, 'devices'), path.join(ifaceDir, name)), { port_number: `${portNumber}\n` });
    fs.writeFileSync(path.join(ifaceDir, 'bInterfaceNumber'), `${iface}\n`);
    sys.tty(name, port, { dev: '188:0\n' });
    return port;
  }

  it('identifies a usb-serial adapter, a CDC ACM device and an on-board UART; skips virtual ttys and empty 8250 slots', async () => {
    sys.usb('1-2', usbAttributes('0403', '6001', 'A50285BI', { manufacturer: 'FTDI\n', product: 'FT232R USB UART\n' }));
    usbSerial('1-2', 'ttyUSB0');
    sys.usb('1-4', usbAttributes('2341', '0043', '7573530303035161B0E1', { manufacturer: 'Arduino (www.arduino.cc)\n' }));
    // cdc_acm: the tty hangs off the interface itself; the data interface has no tty.
    sys.tty('ttyACM0', sys.device('pci0000:00/usb1/1-4/1-4:1.0', { bInterfaceNumber: '00\n' }));
    sys.device('pci0000:00/usb1/1-4/1-4:1.1', { bInterfaceNumber: '01\n' });
    sys.tty('ttyS0', sys.device('pnp0/00:00/00:00:0/00:00:0.0'), { type: '4\n' });
    sys.tty('ttyS1', sys.device('platform/serial8250/serial8250:0.1'), { type: '0\n' });
    sys.tty('tty0', undefined);
    sys.tty('ptmx', undefined);

    const ports = await listSysfsSerialPorts(sys.root, '/dev');
    assert.deepEqual(ports.map((p) => p.path), ['/dev/ttyACM0', '/dev/ttyS0', '/dev/ttyUSB0']);
    const found = byPath(ports);
    const ftdi = found.get('/dev/ttyUSB0');
    assert.equal(ftdi?.vendorId, '0403');
    assert.equal(ftdi?.productId, '6001');
    assert.equal(ftdi?.serialNumber, 'A50285BI');
    assert.equal(ftdi?.manufacturer, 'FTDI');
    assert.equal(ftdi?.product, 'FT232R USB UART');
    assert.equal(ftdi?.usbPort, undefined, 'a one-port device needs no port in its id');
    assert.equal(ftdi?.identityError, undefined);
    assert.equal(found.get('/dev/ttyACM0')?.serialNumber, '7573530303035161B0E1');
    assert.equal(found.get('/dev/ttyACM0')?.usbPort, undefined, 'the data interface has no tty: still one port');
    assert.equal(found.get('/dev/ttyS0')?.vendorId, undefined);
    assert.equal(found.get('/dev/ttyS0')?.identityError, undefined);
  });

  it('gives the serial driver stable ids that survive another port and tell the ports of a 4-port adapter apart', async () => {
    sys.usb('1-3', usbAttributes('0403', '6011', 'FT4232X'));
    for (let i = 0; i < 4; i++) usbSerial('1-3', `ttyUSB${i}`, `0${i}`);
    const driver = new SerialDriver(new SimulatedModemBinding([]), { list: () => listSysfsSerialPorts(sys.root) });
    const devices = await driver.list();
    assert.deepEqual(devices.map((d) => d.deviceId), ['usb-0403:6011:FT4232X:if00', 'usb-0403:6011:FT4232X:if01', 'usb-0403:6011:FT4232X:if02', 'usb-0403:6011:FT4232X:if03']);
    assert.equal(devices[1]?.labels.usbPort, 'if01');

    // The same adapter on another hub port: another USB path, the same ids.
    sys.remove();
    sys = new FakeSysfsTty();
    sys.usb('2-1.3', usbAttributes('0403', '6011', 'FT4232X'));
    for (let i = 0; i < 4; i++) usbSerial('2-1.3', `ttyUSB${i + 4}`, `0${i}`);
    const moved = await new SerialDriver(new SimulatedModemBinding([]), { list: () => listSysfsSerialPorts(sys.root) }).list();
    assert.deepEqual(moved.map((d) => d.deviceId), devices.map((d) => d.deviceId));
    assert.deepEqual(moved.map((d) => d.path), ['/dev/ttyUSB4', '/dev/ttyUSB5', '/dev/ttyUSB6', '/dev/ttyUSB7']);
  });

  it('tells two ports on one interface apart by their usb-serial port number', async () => {
    sys.usb('1-5', usbAttributes('1608', '0044', 'EP01'));
    usbSerial('1-5', 'ttyUSB0', '00', '0');
    usbSerial('1-5', 'ttyUSB1', '00', '1');
    const ports = await listSysfsSerialPorts(sys.root);
    assert.deepEqual(ports.map((p) => p.usbPort), ['if00.0', 'if00.1']);
  });

  it('a device without a serial number has no stable id and no error: it goes by its path', async () => {
    sys.usb('1-6', usbAttributes('1a86', '7523', undefined, { product: 'USB Serial\n' }));
    usbSerial('1-6', 'ttyUSB0');
    const [device] = await new SerialDriver(new SimulatedModemBinding([]), { list: () => listSysfsSerialPorts(sys.root) }).list();
    assert.equal(device?.deviceId, undefined);
    assert.equal(device?.labels.vendorId, '1a86');
    assert.equal(device?.labels.identityError, undefined);
  });

  describe('malformed and missing attributes', () => {
    it('a malformed idVendor or a missing idProduct: listed by path, the reason in identityError, no id', async () => {
      sys.usb('1-2', { idVendor: 'zz12\n', idProduct: '6001\n', serial: 'S1\n' });
      usbSerial('1-2', 'ttyUSB0');
      sys.usb('1-3', { idVendor: '0403\n', serial: 'S2\n' });
      usbSerial('1-3', 'ttyUSB1');
      const driver = new SerialDriver(new SimulatedModemBinding([]), { list: () => listSysfsSerialPorts(sys.root) });
      const [bad, missing] = await driver.list();
      assert.equal(bad?.deviceId, undefined);
      assert.match(bad?.labels.identityError ?? '', /idVendor "zz12" is not 4 hex digits/);
      assert.equal(bad?.labels.vendorId, undefined, 'a malformed value is not passed on');
      assert.equal(missing?.deviceId, undefined);
      assert.match(missing?.labels.identityError ?? '', /no idProduct/);
    });

    it('an attribute of more than one line or with control characters is a read error of that port only', async () => {
      sys.usb('1-2', { idVendor: '04\n03\n', idProduct: '6001\n', serial: 'S1\n' });
      usbSerial('1-2', 'ttyUSB0');
      sys.usb('1-3', usbAttributes('0403', '6001', 'S2'));
      usbSerial('1-3', 'ttyUSB1');
      const found = byPath(await listSysfsSerialPorts(sys.root));
      assert.match(found.get('/dev/ttyUSB0')?.identityError ?? '', /idVendor: not a one-line attribute/);
      assert.equal(found.get('/dev/ttyUSB0')?.vendorId, undefined);
      assert.equal(found.get('/dev/ttyUSB1')?.serialNumber, 'S2', 'the other port is unaffected');
    });

    it('two devices with the same serial number both lose their stable id, said why', async () => {
      sys.usb('1-2', usbAttributes('10c4', 'ea60', '0001'));
      usbSerial('1-2', 'ttyUSB0');
      sys.usb('1-3', usbAttributes('10c4', 'ea60', '0001'));
      usbSerial('1-3', 'ttyUSB1');
      const ports = await listSysfsSerialPorts(sys.root);
      for (const p of ports) assert.match(p.identityError ?? '', /another port has the same USB identity \(10c4:ea60:0001\)/);
    });

    it('ports of one device without interface numbers cannot be told apart: identityError', async () => {
      sys.usb('1-2', usbAttributes('0403', '6010', 'DUAL'));
      sys.tty('ttyUSB0', sys.device('pci0000:00/usb1/1-2/1-2:1.0/ttyUSB0'));
      sys.tty('ttyUSB1', sys.device('pci0000:00/usb1/1-2/1-2:1.1/ttyUSB1'));
      const ports = await listSysfsSerialPorts(sys.root);
      for (const p of ports) {
        assert.match(p.identityError ?? '', /no bInterfaceNumber/);
        assert.equal(p.usbPort, undefined);
      }
    });

    it('no class/tty directory: no ports; a dangling device link: no device behind the tty', async () => {
      assert.deepEqual(await listSysfsSerialPorts(sys.root), []);
      sys.tty('ttyUSB9', path.join(sys.root, 'devices', 'gone'));
      assert.deepEqual(await readSysfsTtys(sys.root), []);
    });

    it('a walk that never finds a USB device stops at the top of the device tree', async () => {
      sys.tty('ttyAMA0', sys.device('platform/soc/fe201000.serial'));
      const ttys = await readSysfsTtys(sys.root);
      assert.deepEqual(ttys, [{ name: 'ttyAMA0' }]);
    });
  });

  it('property: every stable id in a listing is unique, and every USB port without one says why or has no serial number', () => {
    const hex4 = fc.constantFrom('0403', '10c4', 'zz12', '', '0403 ');
    const usb = fc.record({
      device: fc.constantFrom('/d/1-1', '/d/1-2', '/d/1-3'),
      idVendor: fc.option(hex4, { nil: undefined }),
      idProduct: fc.option(hex4, { nil: undefined }),
      serial: fc.option(fc.constantFrom('A', 'B', '0001'), { nil: undefined }),
      bInterfaceNumber: fc.option(fc.constantFrom('00', '01', 'x'), { nil: undefined }),
      portNumber: fc.option(fc.constantFrom('0', '1', '-1'), { nil: undefined }),
    });
    const tty = fc.record({ usb: fc.option(usb, { nil: undefined }), uartType: fc.option(fc.constantFrom('0', '4'), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(tty, { maxLength: 8 }), (list) => {
        const ttys: SysfsTty[] = list.map((t, i) => ({ name: `ttyX${i}`, ...t }));
        const ports = serialPortsFromSysfs(ttys);
        assert.equal(ports.length, ttys.filter((t) => t.uartType !== '0').length);
        const devices = ports.map(discoveredSerialPort);
        const ids = devices.flatMap((d) => (d.deviceId ? [d.deviceId] : []));
        assert.equal(new Set(ids).size, ids.length, `duplicate ids: ${ids.join(' ')}`);
        for (const [i, d] of devices.entries()) {
          const p = ports[i] as SerialPortListing;
          const onUsb = ttys.find((t) => `/dev/${t.name}` === p.path)?.usb !== undefined;
          if (onUsb && !d.deviceId) assert.ok(p.identityError || !p.serialNumber, JSON.stringify(p));
        }
      }),
      { numRuns: 300 },
    );
  });
});
