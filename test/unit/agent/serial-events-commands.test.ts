import * as assert from 'node:assert/strict';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { SimulatedModemBinding, type SimulatedModemPort } from '../../../agent/drivers/simulated-modem';
import { DeviceMeshError } from '../../../src/errors';
import type { SerialConfig } from '../../../src/proto/types';
import { CommandOp, type DeviceCommand } from '../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType, ModemLine } from '../../../src/socket-plane/device-event';
import { lineConfig, waitFor } from './helpers';

const PATH = 'sim:modem0';
const CONFIG: SerialConfig = { baudRate: 115200, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' };

function command(op: CommandOp, target = '', value = 0): DeviceCommand {
  return { op, target, value, data: Buffer.alloc(0) };
}

/**
 * The serial driver's lines, commands and events, through the simulated modem binding: the same
 * SerialPortStream and driver as on a real port, with a port that records what it was asked (a
 * pty refuses the modem-line ioctls and forces 8 data bits and no parity).
 */
describe('agent/drivers/serial-driver: modem lines, commands and read-back configuration', () => {
  let binding: SimulatedModemBinding;
  let driver: SerialDriver;
  let handle: DeviceHandle | undefined;

  beforeEach(() => {
    binding = new SimulatedModemBinding(['modem0']);
    driver = new SerialDriver(binding, { readBack: (p) => binding.lineSettings(p) });
  });

  afterEach(async () => {
    await handle?.close();
    handle = undefined;
  });

  const port = (): SimulatedModemPort => binding.port(PATH) as SimulatedModemPort;

  it('opens with the data bits, parity, stop bits, flow control and DTR/RTS the configuration asks, and reads them back', async () => {
    handle = await driver.open(
      PATH,
      lineConfig({ baudRate: 19200, dataBits: 7, parity: 'PARITY_EVEN', stopBits: 'STOP_BITS_TWO', flowControl: 'FLOW_CONTROL_XONXOFF', dtr: false, rts: true }),
    );
    const o = port().openOptions;
    assert.deepEqual([o.baudRate, o.dataBits, o.parity, o.stopBits, o.xon, o.xoff, o.rtscts], [19200, 7, 'even', 2, true, true, false]);
    assert.deepEqual(port().lineRequests, [{ dtr: false, rts: true, brk: false }]);
    const configuration = await handle.configuration();
    assert.deepEqual(configuration, {
      baudRate: '19200',
      dataBits: '7',
      parity: 'even',
      stopBits: '2',
      flowControl: 'xonxoff',
      dtr: 'false',
      rts: 'true',
      source: 'device',
    });
  });

  it('turns a carrier-detect change into a ModemLines event naming the changed line', async () => {
    handle = await driver.open(PATH, lineConfig(CONFIG, { modemPollMs: '20' }));
    const events: DeviceEvent[] = [];
    handle.onEvent((e) => events.push(e));
    const before = Date.now();
    await waitFor(async () => (await handle?.configuration())?.modemLines !== undefined, 'the first modem-line reading');
    handle.stream.write('ATD5551234\r');
    await waitFor(() => events.length === 1, 'the DCD event');
    handle.stream.write('ATH\r');
    await waitFor(() => events.length === 2, 'the DCD-off event');
    const [up, down] = events as [DeviceEvent, DeviceEvent];
    assert.equal(up.type, DeviceEventType.ModemLines);
    assert.equal(up.source, 'dcd');
    assert.equal(up.value, ModemLine.cts | ModemLine.dsr | ModemLine.dcd);
    assert.equal(down.value, ModemLine.cts | ModemLine.dsr);
    assert.ok(up.timestampMs >= before - 1 && up.timestampMs <= Date.now() + 1, 'timestamped at the agent');
  });

  it('sets DTR and RTS, sends a break, reads the lines, flushes and drains on command', async () => {
    handle = await driver.open(PATH, lineConfig(CONFIG));
    await handle.execute(command(CommandOp.SerialSetLine, 'rts', 0));
    await handle.execute(command(CommandOp.SerialBreak, '', 30));
    await handle.execute(command(CommandOp.SerialSetLine, 'dtr', 0));
    assert.deepEqual(port().lineRequests, [
      { dtr: true, rts: false, brk: false },
      { dtr: true, rts: false, brk: true },
      { dtr: true, rts: false, brk: false },
      { dtr: false, rts: false, brk: false },
    ]);
    // The modem drops DSR with DTR, as a modem's "ready" follows the terminal's.
    assert.equal((await handle.execute(command(CommandOp.SerialGetLines))).value, ModemLine.cts);
    await handle.execute(command(CommandOp.SerialFlush));
    await handle.execute(command(CommandOp.SerialDrain));
    assert.equal((await handle.configuration()).dtr, 'false');
  });

  it('refuses a command of another kind of device, a bad line and a bad break with typed errors', async () => {
    handle = await driver.open(PATH, lineConfig(CONFIG));
    const code = async (cmd: DeviceCommand): Promise<string> => {
      try {
        await handle?.execute(cmd);
        return 'none';
      } catch (err) {
        return err instanceof DeviceMeshError ? err.code : 'untyped';
      }
    };
    assert.equal(await code(command(CommandOp.GpioGet, 'line0')), 'UNIMPLEMENTED');
    assert.equal(await code(command(CommandOp.SerialSetLine, 'cts', 1)), 'INVALID_DOCUMENT');
    assert.equal(await code(command(CommandOp.SerialBreak, '', 60_000)), 'INVALID_DOCUMENT');
  });

  it('refuses a setting it does not know before opening, naming it', () => {
    assert.throws(() => driver.validate(lineConfig(CONFIG, { modemPoll: '5' })), /settings\.modemPoll: is not a setting of the serial driver/);
    assert.throws(() => driver.validate(lineConfig(CONFIG, { modemPollMs: 'soon' })), /settings\.modemPollMs: "soon" is not a number/);
    assert.throws(() => driver.validate(lineConfig({ ...CONFIG, dataBits: 9 })), /serial\.dataBits: 9 is not one of 5, 6, 7, 8/);
  });

  it('lists ports with their USB identity as the stable device id', async () => {
    const usb = new SerialDriver({
      ...binding,
      list: () =>
        Promise.resolve([
          { path: '/dev/ttyUSB0', manufacturer: 'FTDI', serialNumber: 'A50285BI', pnpId: undefined, locationId: undefined, vendorId: '0403', productId: '6001' },
          { path: '/dev/ttyS0', manufacturer: undefined, serialNumber: undefined, pnpId: undefined, locationId: undefined, vendorId: undefined, productId: undefined },
        ]),
      open: (o) => binding.open(o),
    });
    const [ftdi, plain] = await usb.list();
    assert.equal(ftdi?.deviceId, 'usb-0403:6001:A50285BI');
    assert.deepEqual(ftdi?.labels, { manufacturer: 'FTDI', vendorId: '0403', productId: '6001', serialNumber: 'A50285BI' });
    assert.equal(plain?.deviceId, undefined);
    assert.equal(plain?.kind, 'DEVICE_KIND_SERIAL');
  });

  it('configures one line setting at a time in RFC 2217 numbering, answers the value in use, and answers a query (0) with it', async () => {
    handle = await driver.open(PATH, lineConfig(CONFIG));
    const configure = async (target: string, value: number): Promise<number> => (await handle!.execute(command(CommandOp.SerialConfigure, target, value))).value;
    assert.equal(await configure('baudRate', 9600), 9600);
    assert.equal(await configure('dataBits', 7), 7);
    assert.equal(await configure('parity', 3), 3, 'even');
    assert.equal(await configure('stopBits', 3), 3, 'one and a half');
    assert.equal(await configure('flowControl', 3), 3, 'RTS/CTS');
    const o = port().openOptions;
    assert.deepEqual([o.baudRate, o.dataBits, o.parity, o.stopBits, o.rtscts], [9600, 7, 'even', 1.5, true]);
    assert.deepEqual(
      await Promise.all(['baudRate', 'dataBits', 'parity', 'stopBits', 'flowControl'].map((t) => configure(t, 0))),
      [9600, 7, 3, 3, 3],
    );
    await assert.rejects(configure('parity', 9), /9 is not a valid parity/);
    await assert.rejects(configure('speed', 1), /"speed" is not one of baudRate/);
  });

  it('holds BREAK on until told to turn it off', async () => {
    handle = await driver.open(PATH, lineConfig(CONFIG));
    await handle.execute(command(CommandOp.SerialSetLine, 'brk', 1));
    await handle.execute(command(CommandOp.SerialSetLine, 'brk', 0));
    assert.deepEqual(port().lineRequests, [
      { dtr: true, rts: true, brk: true },
      { dtr: true, rts: true, brk: false },
    ]);
  });
});
