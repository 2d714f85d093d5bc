import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { autoDetect } from '@serialport/bindings-cpp';
import { SerialPort } from 'serialport';
import { DeviceInventory } from '../../../agent/device-inventory';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { SimulatedModemBinding } from '../../../agent/drivers/simulated-modem';
import { readTermios } from '../../../agent/drivers/termios-readback';
import { MappingTable } from '../../../agent/mapping-table';
import { applyMappings } from '../../helpers/apply-mappings';
import { SocketPlaneServer } from '../../../agent/socket-plane-server';
import { AgentPool } from '../../../sidecar/agent-pool';
import { VirtualDevices } from '../../../sidecar/virtual-devices';
import type { Mapping } from '../../../src/proto/types';
import { Stats } from '../../../src/telemetry/stats';
import { EchoPtyDevice, PtyControlClient, sttyOf } from '../../helpers/pty-apps';
import { haveSocat } from '../../helpers/pty';
import { havePySerial, PySerialClient } from '../../helpers/rfc2217-clients';
import { mapping, testLogger, waitUntil, WORKLOAD } from './helpers';

/**
 * Apps that only know tty paths (pyserial with a path, Node serialport) → the sidecar's pty →
 * the agent's socket plane, session host and serial driver, in process: a socat pty echoing with
 * cat as the physical device (what the kernel keeps of its termios is read with stty -F), and the
 * simulated modem binding behind the same driver for what a pty cannot keep (data bits, parity)
 * and what it cannot carry (BREAK, DTR/RTS), which go through the port's control socket.
 */
describe('sidecar: virtual serial port (pty) through the agent’s serial driver', function () {
  this.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-pty-'));
  const echoLink = path.join(dir, 'ttyECHO');
  const port = path.join(dir, 'dev', 'ttyDM0');
  const fakePort = path.join(dir, 'dev', 'ttyDMfake');
  const sim = new SimulatedModemBinding(['modem0']);
  const stats = new Stats();
  const log = testLogger();
  let echo: EchoPtyDevice;
  let devices: DeviceInventory;
  let server: SocketPlaneServer;
  let pool: AgentPool;
  let sidecar: VirtualDevices;
  const clients: PySerialClient[] = [];
  let onPty: (id: string, at: string, devicePath: string) => Mapping;

  const simPort = (): NonNullable<ReturnType<SimulatedModemBinding['port']>> => {
    const p = sim.port('sim:modem0');
    assert.ok(p, 'the simulated modem is open');
    return p;
  };
  const pyOpen = async (at: string, settings: Record<string, unknown>): Promise<PySerialClient> => {
    const py = PySerialClient.start();
    clients.push(py);
    const answer = await py.call({ op: 'open', url: at, settings });
    assert.ok(answer.ok, `pyserial opens ${at}: ${answer.error}`);
    return py;
  };

  before(async function () {
    if (!haveSocat() || !havePySerial()) {
      console.log('    skipped: socat or python3-serial is missing (scripts/install-test-deps.sh installs them)');
      this.skip();
    }
    echo = await EchoPtyDevice.plug(echoLink);
    const simulated = new SerialDriver(sim, { readBack: (p) => sim.lineSettings(p) });
    const real = new SerialDriver(autoDetect(), { readBack: readTermios });
    const mappings = new MappingTable('gw1');
    devices = new DeviceInventory((device, onConfiguration) => ({ path: device.path, driver: device.path.startsWith('sim:') ? simulated : real, stats, log, onConfiguration }));
    devices.add({ path: 'sim:modem0', deviceId: 'sim:modem0', kind: 'DEVICE_KIND_SERIAL', capabilities: ['serial'], labels: {} });
    devices.add({ path: echoLink, deviceId: echoLink, kind: 'DEVICE_KIND_SERIAL', capabilities: ['serial'], labels: {} });
    server = new SocketPlaneServer({ listen: '127.0.0.1:0', hostId: 'gw1', mappings, devices, stats, log });
    const agentAddress = await server.listen();
    onPty = (id: string, at: string, devicePath: string): Mapping => {
      const m = mapping(id, '', agentAddress, 'VIRTUAL_PROTOCOL_PTY');
      return { ...m, devicePath, virtual: { ...(m.virtual as NonNullable<Mapping['virtual']>), path: at, owner: '', group: '', mode: 0o600 } };
    };
    const set = [onPty('echo', port, echoLink), onPty('fake', fakePort, 'sim:modem0')];
    await applyMappings(mappings, devices, set, log);
    pool = new AgentPool(log);
    sidecar = new VirtualDevices({ workloadId: WORKLOAD, pool, stats, log });
    await sidecar.apply(set);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  after(async () => {
    await sidecar?.drain(0);
    pool?.close();
    await server?.close();
    await devices?.close({ code: 'UNAVAILABLE', message: 'test over' });
    await echo?.pull();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('links the pty at virtual.path with the binding’s mode, and a control socket beside it', () => {
    const target = fs.readlinkSync(port);
    assert.match(target, /^\/dev\/pts\/\d+$/);
    assert.equal(fs.statSync(port).mode & 0o777, 0o600);
    assert.ok(fs.statSync(`${port}.control`).isSocket());
    assert.equal(fs.statSync(`${port}.control`).mode & 0o777, 0o600);
  });

  it('pyserial (a path) sets 9600 7E2 RTS/CTS then 57600: the physical pty shows baud, stop bits and RTS/CTS', async () => {
    const py = await pyOpen(port, { baudrate: 9600, bytesize: 7, parity: 'E', stopbits: 2, rtscts: true, timeout: 10 });
    await waitUntil(() => {
      const s = sttyOf(echoLink);
      return s.speed === 9600 && s.flags.has('cstopb') && s.flags.has('crtscts');
    }, 'the device at 9600, two stop bits, RTS/CTS');
    await py.must({ op: 'set', name: 'baudrate', value: 57600 });
    await waitUntil(() => sttyOf(echoLink).speed === 57600, 'the device at 57600');
    const s = sttyOf(echoLink);
    assert.ok(s.flags.has('cstopb') && s.flags.has('crtscts'), 'stop bits and RTS/CTS stay');
    await py.write(Buffer.from('ping\n'));
    assert.equal((await py.read(5, 10)).toString(), 'ping\n');
  });

  it('data bits and parity (which a pty drops) arrive through the control socket; BREAK, DTR and RTS too', async () => {
    const py = await pyOpen(fakePort, { baudrate: 9600, bytesize: 7, parity: 'E', stopbits: 2, rtscts: true, timeout: 10 });
    await waitUntil(() => sim.port('sim:modem0')?.openOptions.stopBits === 2, 'two stop bits at the modem');
    const control = await PtyControlClient.connect(`${fakePort}.control`);
    try {
      assert.equal(await control.request('dataBits 7'), 'ok dataBits 7');
      assert.equal(await control.request('parity even'), 'ok parity even');
      const o = simPort().openOptions;
      assert.deepEqual([o.baudRate, o.dataBits, o.parity, o.stopBits, o.rtscts], [9600, 7, 'even', 2, true]);
      const before = simPort().lineRequests.length;
      assert.equal(await control.request('break 50'), 'ok break 50');
      const breaks = simPort().lineRequests.slice(before).map((r) => r.brk);
      assert.deepEqual(breaks, [true, false]);
      // The driver reports a modem-line change only once it has read the lines once (on this port, after the reopens).
      await waitUntil(() => simPort().lineReads > 0, 'the modem lines read once');
      assert.equal(await control.request('dtr 0'), 'ok dtr 0');
      assert.equal(simPort().lineRequests.at(-1)?.dtr, false);
      assert.equal(await control.request('rts 0'), 'ok rts 0');
      assert.equal(simPort().lineRequests.at(-1)?.rts, false);
      // The modem's DSR follows DTR: the agent's modem-line poll sees it go, the control socket and /config_dump say so.
      await waitUntil(() => control.events.at(-1) === 'event lines cts', 'DSR down reported to the control client');
      const port = (): Record<string, string> | undefined => sidecar.state().find((d) => d.id === 'fake')?.port;
      assert.deepEqual(port(), { pty: fs.readlinkSync(fakePort), appOpen: 'true', modemLines: 'cts' });
      assert.equal(await control.request('dtr 1'), 'ok dtr 1');
      await waitUntil(() => control.events.at(-1) === 'event lines cts,dsr', 'DSR up again reported to the control client');
      assert.equal(port()?.modemLines, 'cts,dsr');
      assert.match(await control.request('lines'), /^ok lines (none|[a-z,]+)$/);
      assert.match(await control.request('parity purple'), /^error PROTOCOL_ERROR parity is one of none, odd, even, mark, space/);
      assert.match(await control.request('dtr'), /^error PROTOCOL_ERROR dtr needs 0 or 1/);
      control.send(`${'x'.repeat(200)}`);
      assert.match(await control.next(), /^error PROTOCOL_ERROR line longer than 128 characters; closing/);
    } finally {
      control.close();
    }
    await py.write(Buffer.from('AT\r'));
    assert.match((await py.read(9, 10)).toString('latin1'), /AT\r\r\nOK\r\n/);
  });

  it('B0 drops DTR and leaves the baud rate; the next rate raises DTR again', async () => {
    const py = await pyOpen(fakePort, { baudrate: 9600, timeout: 5 });
    await waitUntil(() => sim.port('sim:modem0')?.openOptions.baudRate === 9600, 'the modem at 9600');
    const before = simPort().lineRequests.length;
    await py.must({ op: 'set', name: 'baudrate', value: 0 });
    await waitUntil(() => simPort().lineRequests.slice(before).some((r) => r.dtr === false), 'DTR dropped at the modem');
    assert.equal(simPort().openOptions.baudRate, 9600, 'B0 is a hang-up, not a rate');
    await py.must({ op: 'set', name: 'baudrate', value: 19200 });
    await waitUntil(() => simPort().openOptions.baudRate === 19200, 'the modem at 19200');
    assert.equal(simPort().lineRequests.at(-1)?.dtr, true, 'DTR raised again');
    await py.write(Buffer.from('AT\r'));
    assert.match((await py.read(9, 10)).toString('latin1'), /AT\r\r\nOK\r\n/);
  });

  it('tcflush of input and of output each reach the device as a flush, counted by kind', async () => {
    const py = await pyOpen(fakePort, { baudrate: 9600, timeout: 5 });
    // pyserial's open flushes the input itself: once a command has been answered, that flush has reached the modem.
    await py.write(Buffer.from('AT\r'));
    assert.match((await py.read(9, 10)).toString('latin1'), /AT\r\r\nOK\r\n/);
    const labels = { mapping: 'fake' };
    const reads = stats.get('pty_packets', { ...labels, status: 'flushRead' });
    const writes = stats.get('pty_packets', { ...labels, status: 'flushWrite' });
    // Counted per path: the session's opening settings may reopen the port meanwhile.
    const flushCount = (): number => sim.flushes.get('sim:modem0') ?? 0;
    const flushes = flushCount();
    await py.must({ op: 'call', name: 'reset_input_buffer' });
    await waitUntil(() => flushCount() === flushes + 1, 'the input flush at the modem');
    await py.must({ op: 'call', name: 'reset_output_buffer' });
    await waitUntil(() => flushCount() === flushes + 2, 'the output flush at the modem');
    assert.equal(stats.get('pty_packets', { ...labels, status: 'flushRead' }), reads + 1);
    assert.equal(stats.get('pty_packets', { ...labels, status: 'flushWrite' }), writes + 1);
    await py.write(Buffer.from('ATI\r'));
    assert.match((await py.read(10, 10)).toString('latin1'), /^ATI\r\r\n/);
  });

  it('1 MiB with every byte value round-trips in order through pyserial', async () => {
    // Two processes on the port, as pyserial answers one request at a time: one reads while the other writes.
    const reader = await pyOpen(port, { baudrate: 115200, timeout: 60 });
    const writer = await pyOpen(port, { baudrate: 115200 });
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
    const reading = reader.read(data.length, 60);
    await writer.write(data);
    const back = await reading;
    assert.equal(back.length, data.length);
    assert.ok(back.equals(data), 'the same bytes in the same order');
  });

  it('Node serialport opens the path: 9600 7E2 RTS/CTS then 57600 reach the physical pty; bytes echo', async () => {
    const sp = new SerialPort({ path: port, baudRate: 9600, dataBits: 7, parity: 'even', stopBits: 2, rtscts: true, autoOpen: false });
    await new Promise<void>((resolve, reject) => sp.open((err) => (err ? reject(err) : resolve())));
    try {
      await waitUntil(() => {
        const s = sttyOf(echoLink);
        return s.speed === 9600 && s.flags.has('cstopb') && s.flags.has('crtscts');
      }, 'the device at 9600 7E2 RTS/CTS');
      await new Promise<void>((resolve, reject) => sp.update({ baudRate: 57600 }, (err) => (err ? reject(err) : resolve())));
      await waitUntil(() => sttyOf(echoLink).speed === 57600, 'the device at 57600');
      const got: Buffer[] = [];
      sp.on('data', (chunk: Buffer) => got.push(chunk));
      sp.write(Buffer.from('hello'));
      await waitUntil(() => Buffer.concat(got).toString() === 'hello', 'the echo');
    } finally {
      await new Promise<void>((resolve) => sp.close(() => resolve()));
    }
  });

  it('pulling the device hangs the app up within 1 s; re-plugged, the same path works again', async () => {
    const py = await pyOpen(port, { baudrate: 115200 });
    await py.write(Buffer.from('x'));
    assert.equal((await py.read(1)).toString(), 'x');
    const reading = py.call({ op: 'read', n: 1, timeout: 10 });
    const pulledAt = Date.now();
    await echo.pull();
    const answer = await reading;
    const took = Date.now() - pulledAt;
    assert.equal(answer.ok, false, 'the read fails rather than timing out quietly');
    assert.match(answer.error ?? '', /SerialException|returned no data|Input\/output error/);
    assert.ok(took < 1000, `hung up after ${took} ms`);
    await py.close();
    echo = await EchoPtyDevice.plug(echoLink);
    await waitUntil(() => fs.existsSync(port), 'the port linked again');
    const again = await pyOpen(port, { baudrate: 115200 });
    await again.write(Buffer.from('back'));
    assert.equal((await again.read(4)).toString(), 'back');
  });

  it('a withdrawn mapping removes the link and its control socket', async () => {
    assert.equal(sidecar.state().length, 2);
    await sidecar.apply([]);
    assert.equal(fs.existsSync(port), false);
    assert.equal(fs.existsSync(`${port}.control`), false);
  });

  it('a sidecar started again replaces the link and the control socket a killed one left behind', async () => {
    // What a sidecar killed with SIGKILL leaves: a link to a pty that is gone and its socket's file.
    fs.symlinkSync('/dev/pts/999999', port);
    fs.writeFileSync(`${port}.control`, '');
    await sidecar.apply([onPty('echo', port, echoLink)]);
    assert.match(fs.readlinkSync(port), /^\/dev\/pts\/\d+$/);
    assert.notEqual(fs.readlinkSync(port), '/dev/pts/999999');
    const py = await pyOpen(port, { baudrate: 115200 });
    await py.write(Buffer.from('again'));
    assert.equal((await py.read(5)).toString(), 'again');
    await py.close();
    const control = await PtyControlClient.connect(`${port}.control`);
    try {
      assert.match(await control.request('lines'), /^error UNAVAILABLE no app has .* open/);
    } finally {
      control.close();
    }
    await sidecar.apply([]);
  });
});
