import { strict as assert } from 'node:assert';
import { DeviceInventory } from '../../../agent/device-inventory';
import { SIMULATED_MODEM_IDENTITY, SimulatedModemBinding } from '../../../agent/drivers/simulated-modem';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { MappingTable } from '../../../agent/mapping-table';
import { applyMappings } from '../../helpers/apply-mappings';
import { SocketPlaneServer } from '../../../agent/socket-plane-server';
import { AgentPool } from '../../../sidecar/agent-pool';
import { VirtualDeviceListener } from '../../../sidecar/listener';
import type { Mapping, Policy } from '../../../src/proto/types';
import { Stats } from '../../../src/telemetry/stats';
import { havePySerial, PySerialClient, TelnetClient } from '../../helpers/rfc2217-clients';
import { freePort, mapping, testLogger, waitUntil, WORKLOAD } from './helpers';
import { EMPTY_POLICY } from '../../../src/model/policy-defaults';

const PINNED: Policy = { ...EMPTY_POLICY, name: 'pinned', access: 'ACCESS_READ_WRITE', sharing: 'SHARING_MODE_EXCLUSIVE', pinSerial: true };

/**
 * pyserial → the sidecar's RFC 2217 bridge → the agent's own socket plane, session host and
 * serial driver, in process, over the simulated modem binding: the binding's open port records
 * what the driver asked of it, so the test sees each setting as it reached the driver.
 */
describe('sidecar: RFC 2217 through the agent’s serial driver to a simulated modem', function () {
  this.timeout(60_000);
  const sim = new SimulatedModemBinding(['modem0']);
  const stats = new Stats();
  const log = testLogger();
  let devices: DeviceInventory;
  let server: SocketPlaneServer;
  let pool: AgentPool;
  const listeners: VirtualDeviceListener[] = [];
  const ports = { free: 0, pinned: 0 };
  const clients: Array<PySerialClient | TelnetClient> = [];

  const open = async (settings: Record<string, unknown>, port = ports.free): Promise<PySerialClient> => {
    const c = await PySerialClient.open(port, settings);
    clients.push(c);
    return c;
  };
  const simPort = (): NonNullable<ReturnType<SimulatedModemBinding['port']>> => {
    const p = sim.port('sim:modem0');
    assert.ok(p, 'the simulated modem is open');
    return p;
  };

  before(async function () {
    if (!havePySerial()) {
      console.log('    skipped: python3-serial is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
    const driver = new SerialDriver(sim, { readBack: (p) => sim.lineSettings(p) });
    const mappings = new MappingTable('gw1');
    devices = new DeviceInventory((device, onConfiguration) => ({ path: device.path, driver, stats, log, onConfiguration }));
    devices.add({ path: 'sim:modem0', deviceId: 'sim:modem0', kind: 'DEVICE_KIND_SERIAL', capabilities: ['serial'], labels: {} });
    server = new SocketPlaneServer({ listen: '127.0.0.1:0', hostId: 'gw1', mappings, devices, stats, log });
    const agentAddress = await server.listen();
    ports.free = await freePort();
    ports.pinned = await freePort();
    const onModem = (id: string, port: number, policy: Policy | null): Mapping => ({
      ...mapping(id, `127.0.0.1:${port}`, agentAddress, 'VIRTUAL_PROTOCOL_RFC2217'),
      devicePath: 'sim:modem0',
      policy,
    });
    const set = [onModem('free', ports.free, null), onModem('pinned', ports.pinned, PINNED)];
    await applyMappings(mappings, devices, set, log);
    pool = new AgentPool(log);
    for (const m of set) listeners.push(await VirtualDeviceListener.start(m, { workloadId: WORKLOAD, pool, stats, log }));
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) {
      if (c instanceof PySerialClient) await c.close();
      else c.destroy();
    }
    await waitUntil(() => sim.port('sim:modem0') === undefined, 'the modem to be closed');
  });

  after(async () => {
    for (const l of listeners) await l.close('test over');
    pool?.close();
    await server?.close();
    await devices?.close({ code: 'UNAVAILABLE', message: 'test over' });
  });

  it('each setting reaches the driver as asked, answered byte for byte; the modem answers through it', async () => {
    const py = await open({ baudrate: 2400, bytesize: 7, parity: 'E', stopbits: 1, xonxoff: true });
    const o = simPort().openOptions;
    assert.deepEqual([o.baudRate, o.dataBits, o.parity, o.stopBits, o.xon, o.xoff, o.rtscts], [2400, 7, 'even', 1, true, true, false]);
    await py.must({ op: 'set', name: 'stopbits', value: 1.5 });
    await py.must({ op: 'set', name: 'parity', value: 'M' });
    const after = simPort().openOptions;
    assert.deepEqual([after.stopBits, after.parity, after.dataBits], [1.5, 'mark', 7]);
    await py.write(Buffer.from('ATI\r'));
    const answer = await py.read(`ATI\r\r\n${SIMULATED_MODEM_IDENTITY}\r\n\r\nOK\r\n`.length);
    assert.equal(answer.toString('latin1'), `ATI\r\r\n${SIMULATED_MODEM_IDENTITY}\r\n\r\nOK\r\n`);
  });

  it('modem-state changes the modem makes reach pyserial; DTR reaches the modem', async () => {
    const py = await open({});
    const line = (name: string): Promise<unknown> => py.must({ op: 'get', name });
    assert.deepEqual([await line('cts'), await line('dsr'), await line('cd')], [true, true, false]);
    await py.write(Buffer.from('ATD5551234\r'));
    await waitUntil(async () => (await line('cd')) === true, 'carrier detect after dialling');
    await py.must({ op: 'set', name: 'dtr', value: false });
    assert.equal(simPort().lineRequests.at(-1)?.dtr, false);
    await waitUntil(async () => (await line('cd')) === false && (await line('dsr')) === false, 'the hang-up on DTR drop');
  });

  it('a pinned mapping answers the setting in use; strict pyserial refuses that, the driver saw no change', async () => {
    const before = stats.get('rfc2217_refused', { command: 'SetBaudRate' });
    const raw = await TelnetClient.connect(ports.pinned);
    clients.push(raw);
    // 19200 asked, 9600 (the binding's) in use.
    assert.deepEqual([...(await raw.request(1, [0, 0, 0x4b, 0]))], [0, 0, 0x25, 0x80]);
    assert.equal(stats.get('rfc2217_refused', { command: 'SetBaudRate' }) - before, 1);
    assert.equal(simPort().openOptions.baudRate, 9600);
    raw.destroy();
    await waitUntil(() => sim.port('sim:modem0') === undefined, 'the modem to be closed');
    const py = PySerialClient.start();
    clients.push(py);
    const answer = await py.call({ op: 'open', url: `rfc2217://127.0.0.1:${ports.pinned}`, settings: { baudrate: 19200 } });
    assert.equal(answer.ok, false);
    assert.match(answer.error ?? '', /remote rejected value for option 'baudrate'/);
  });
});
