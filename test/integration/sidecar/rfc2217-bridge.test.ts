import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import fc from 'fast-check';
import { AgentPool } from '../../../sidecar/agent-pool';
import { VirtualDeviceListener } from '../../../sidecar/listener';
import { DO, DONT, IAC, OPT_COM_PORT, OPT_ECHO, SB, SE, WILL, WONT } from '../../../src/rfc2217/telnet-codes';
import { FramedConnection, type OpenDecision } from '../../../src/socket-plane/connection';
import { CommandOp, type CommandRequest } from '../../../src/socket-plane/device-command';
import { DeviceEventType, eventTimestamp, ModemLine } from '../../../src/socket-plane/device-event';
import type { Session } from '../../../src/socket-plane/session';
import { Stats } from '../../../src/telemetry/stats';
import { havePySerial, PySerialClient, TelnetClient } from '../../helpers/rfc2217-clients';
import { freePort, mapping, testLogger, waitUntil, WORKLOAD } from './helpers';

type Settings = Record<'baudRate' | 'dataBits' | 'parity' | 'stopBits' | 'flowControl', number>;
const DEFAULTS: Settings = { baudRate: 115200, dataBits: 8, parity: 1, stopBits: 1, flowControl: 1 };
const VALID: Record<keyof Settings, (v: number) => boolean> = {
  baudRate: (v) => Number.isInteger(v) && v > 0,
  dataBits: (v) => v >= 5 && v <= 8,
  parity: (v) => v >= 1 && v <= 5,
  stopBits: (v) => v >= 1 && v <= 3,
  flowControl: (v) => v >= 1 && v <= 3,
};

/**
 * The agent's side of the socket plane with a scripted serial device behind it: it echoes bytes
 * (with flow control), answers the serial commands as the agent's driver does (SerialConfigure
 * with the value in use), records every command, and can pin or refuse a setting.
 */
class FakeSerialAgent {
  settings: Settings = { ...DEFAULTS };
  lines = ModemLine.cts | ModemLine.dsr;
  readonly commands: CommandRequest[] = [];
  readonly pinned = new Set<string>();
  /** Targets whose commands fail as a device refusing them would. */
  readonly refused = new Set<string>();
  readonly sessions = new Set<Session>();
  received = Buffer.alloc(0);

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
  ) {
    server.on('connection', (socket: net.Socket) => {
      new FramedConnection(socket, 'server').on('open', (decision: OpenDecision) => this.serve(decision.accept()));
    });
  }

  static async start(): Promise<FakeSerialAgent> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new FakeSerialAgent(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  }

  reset(): void {
    this.settings = { ...DEFAULTS };
    this.lines = ModemLine.cts | ModemLine.dsr;
    this.commands.length = 0;
    this.pinned.clear();
    this.refused.clear();
    this.received = Buffer.alloc(0);
  }

  /** Changes the modem lines and tells every session, as the driver's poller does. */
  setLines(bits: number): void {
    const changed = this.lines ^ bits;
    this.lines = bits;
    const source = Object.entries(ModemLine).filter(([, bit]) => changed & bit).map(([name]) => name).join(',');
    const event = { type: DeviceEventType.ModemLines, timestampMs: eventTimestamp(), source, value: bits, data: Buffer.alloc(0) };
    for (const s of this.sessions) s.sendEvent(event);
  }

  configured(): Array<[string, number]> {
    return this.commands.filter((c) => c.op === CommandOp.SerialConfigure).map((c) => [c.target, c.value]);
  }

  close(): Promise<void> {
    for (const s of this.sessions) s.reset({ code: 'UNAVAILABLE', message: 'test over' });
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(session: Session): void {
    this.sessions.add(session);
    session.once('close', () => this.sessions.delete(session));
    let unacknowledged = 0;
    session.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      if (session.write(chunk)) session.consumed(chunk.length);
      else unacknowledged += chunk.length;
    });
    session.on('drain', () => {
      session.consumed(unacknowledged);
      unacknowledged = 0;
    });
    session.on('end', () => session.end());
    session.on('command', (command: CommandRequest) => {
      this.commands.push(command);
      const ok = (value: number): void => session.respond({ requestId: command.requestId, ok: true, value, data: Buffer.alloc(0) });
      const fail = (message: string): void => session.respond({ requestId: command.requestId, ok: false, code: 'DEVICE_ERROR', message });
      if (this.refused.has(command.target)) return fail(`the device refused ${command.target}`);
      switch (command.op) {
        case CommandOp.SerialConfigure: {
          const target = command.target as keyof Settings;
          if (!(target in this.settings)) return fail(`unknown setting ${target}`);
          if (command.value !== 0 && !this.pinned.has(target)) {
            if (!VALID[target](command.value)) return fail(`${command.value} is not a valid ${target}`);
            this.settings[target] = command.value;
          }
          return ok(this.settings[target]);
        }
        case CommandOp.SerialGetLines:
          return ok(this.lines);
        case CommandOp.SerialSetLine:
        case CommandOp.SerialFlush:
          return ok(command.value);
        default:
          return fail(`unexpected ${CommandOp[command.op]}`);
      }
    });
  }
}

const sub = (...body: number[]): number[] => [IAC, SB, ...body, IAC, SE];
/** Telnet data escaping, written out here rather than taken from the code under test. */
function escaped(data: Buffer): Buffer {
  const out = Buffer.alloc(data.length * 2);
  let o = 0;
  for (const b of data) {
    out[o++] = b;
    if (b === IAC) out[o++] = IAC;
  }
  return out.subarray(0, o);
}
const be32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

describe('sidecar: RFC 2217 bridge (pyserial and a bare Telnet client, a scripted serial device)', function () {
  this.timeout(60_000);
  let agent: FakeSerialAgent;
  let listener: VirtualDeviceListener;
  let pool: AgentPool;
  let stats: Stats;
  let port: number;
  const clients: Array<{ close?(): Promise<void>; destroy?(): void }> = [];

  const telnet = async (): Promise<TelnetClient> => {
    const c = await TelnetClient.connect(port);
    clients.push(c);
    return c;
  };
  const pyserial = async (settings: Record<string, unknown> = {}, query = ''): Promise<PySerialClient> => {
    const c = await PySerialClient.open(port, settings, query);
    clients.push(c);
    return c;
  };
  const refusals = (command: string): number => stats.get('rfc2217_refused', { command });
  const needPySerial = function (this: Mocha.Context): void {
    if (!havePySerial()) {
      console.log('    skipped: python3-serial is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
  };

  before(async () => {
    agent = await FakeSerialAgent.start();
    port = await freePort();
    stats = new Stats();
    pool = new AgentPool(testLogger());
    const m = mapping('m2217', `127.0.0.1:${port}`, agent.address, 'VIRTUAL_PROTOCOL_RFC2217');
    listener = await VirtualDeviceListener.start(m, { workloadId: WORKLOAD, pool, stats, log: testLogger() });
  });

  beforeEach(() => agent.reset());

  afterEach(async () => {
    for (const c of clients.splice(0)) {
      if (c.close) await c.close();
      else c.destroy?.();
    }
    await waitUntil(() => agent.sessions.size === 0, 'every session to end');
  });

  after(async () => {
    await listener?.close('test over');
    pool?.close();
    await agent?.close();
  });

  it('offers binary, SGA and COM-PORT-OPTION, refuses the rest, never answers an option twice', async () => {
    const c = await telnet();
    const negotiations = (): number[][] => c.items.flatMap((i) => (i.kind === 'negotiate' ? [[i.verb, i.option]] : []));
    await c.until('the six offers', () => (negotiations().length >= 6 ? true : undefined));
    const offers = [[WILL, 0], [WILL, 3], [WILL, 44], [DO, 0], [DO, 3], [DO, 44]];
    assert.deepEqual(negotiations(), offers);
    const agreeing = [IAC, DO, 0, IAC, DO, 3, IAC, DO, 44, IAC, WILL, 0, IAC, WILL, 3, IAC, WILL, 44];
    c.send([...agreeing, IAC, DO, OPT_ECHO, IAC, WILL, 200, IAC, DO, 0, IAC, WILL, 44]);
    const signature = await c.request(0, []);
    assert.match(signature.toString('latin1'), /^devicemesh sidecar, mapping m2217$/);
    assert.deepEqual(negotiations(), [...offers, [WONT, OPT_ECHO], [DONT, 200]]);
    // Once the client agreed to COM-PORT-OPTION it got the modem state: CTS and DSR.
    assert.deepEqual(c.comPort().find((p) => p[0] === 107), Buffer.from([107, 0x30]));
  });

  it('pyserial opens at 9600 7E2 with RTS/CTS: each setting reaches the device as asked', async function () {
    needPySerial.call(this);
    const py = await pyserial({ baudrate: 9600, bytesize: 7, parity: 'E', stopbits: 2, rtscts: true });
    assert.deepEqual(agent.configured(), [['baudRate', 9600], ['dataBits', 7], ['parity', 3], ['stopBits', 2], ['flowControl', 3]]);
    assert.deepEqual(agent.settings, { baudRate: 9600, dataBits: 7, parity: 3, stopBits: 2, flowControl: 3 });
    const others = agent.commands.filter((c) => c.op !== CommandOp.SerialConfigure).map((c) => [CommandOp[c.op], c.target, c.value]);
    // pyserial raises DTR (not RTS: RTS/CTS owns it) and purges both buffers; the initial modem state is read first.
    assert.deepEqual(others, [['SerialGetLines', '', 0], ['SerialSetLine', 'dtr', 1], ['SerialFlush', '', 0], ['SerialFlush', '', 0]]);
    assert.equal(await py.must({ op: 'get', name: 'cts' }), true);
    assert.equal(await py.must({ op: 'get', name: 'cd' }), false);

    await py.must({ op: 'set', name: 'baudrate', value: 19200 });
    assert.equal(agent.settings.baudRate, 19200);
    await py.must({ op: 'set', name: 'parity', value: 'O' });
    assert.equal(agent.settings.parity, 2);
    assert.equal(refusals('SetBaudRate'), 0);
  });

  it('moves every byte value both ways through pyserial, 0xFF included', async function () {
    needPySerial.call(this);
    const py = await pyserial();
    const data = Buffer.alloc(256 * 64);
    for (let i = 0; i < data.length; i++) data[i] = i % 3 === 0 ? 0xff : (i * 7) & 0xff;
    await py.write(data);
    assert.deepEqual(await py.read(data.length), data);
    assert.deepEqual(agent.received, data, 'the device got the bytes unescaped');
  });

  it('answers a query (value 0) with the value in use, and masks as set', async () => {
    agent.settings = { baudRate: 57600, dataBits: 7, parity: 3, stopBits: 2, flowControl: 2 };
    const c = await telnet();
    assert.deepEqual([...(await c.request(1, [0, 0, 0, 0]))], be32(57600));
    assert.deepEqual([...(await c.request(2, [0]))], [7]);
    assert.deepEqual([...(await c.request(3, [0]))], [3]);
    assert.deepEqual([...(await c.request(4, [0]))], [2]);
    assert.deepEqual([...(await c.request(5, [0]))], [2], 'outbound flow control: XON/XOFF');
    assert.deepEqual([...(await c.request(5, [13]))], [15], 'inbound flow control: XON/XOFF');
    assert.deepEqual([...(await c.request(5, [7]))], [8], 'DTR is on after open');
    assert.deepEqual([...(await c.request(5, [10]))], [11], 'RTS is on after open');
    assert.deepEqual([...(await c.request(5, [4]))], [6], 'no BREAK');
    assert.deepEqual([...(await c.request(10, [0xff]))], [0xff], 'a mask of 255 comes back IAC-doubled on the wire');
    assert.deepEqual([...(await c.request(1, be32(0x00ffff00)))], be32(0x00ffff00));
    assert.equal(agent.settings.baudRate, 0x00ffff00);
    assert.ok(agent.configured().slice(0, -1).every(([, v]) => v === 0), 'queries changed nothing');
  });

  it('answers a pinned setting with the value in use; strict pyserial refuses to open', async function () {
    agent.pinned.add('baudRate');
    const before = refusals('SetBaudRate');
    const c = await telnet();
    assert.deepEqual([...(await c.request(1, be32(9600)))], be32(115200));
    assert.equal(refusals('SetBaudRate') - before, 1);
    if (!havePySerial()) return;
    const py = PySerialClient.start();
    clients.push(py);
    const answer = await py.call({ op: 'open', url: `rfc2217://127.0.0.1:${port}`, settings: { baudrate: 9600 } });
    assert.equal(answer.ok, false);
    assert.match(answer.error ?? '', /remote rejected value for option 'baudrate'/);
  });

  it('answers what is really in use where the device refuses, and counts it', async () => {
    const before = [refusals('SetDataSize'), refusals('SetControl')];
    const c = await telnet();
    agent.refused.add('dataBits');
    assert.deepEqual([...(await c.request(2, [5]))], [0], 'neither set nor read: 0');
    agent.refused.clear();
    assert.deepEqual([...(await c.request(2, [9]))], [8], 'an invalid size: the one in use');
    agent.refused.add('dtr');
    assert.deepEqual([...(await c.request(5, [9]))], [8], 'DTR stays on');
    assert.deepEqual([...(await c.request(5, [17]))], [1], 'DCD flow control: the flow control in use');
    assert.deepEqual([refusals('SetDataSize') - (before[0] as number), refusals('SetControl') - (before[1] as number)], [2, 2]);
  });

  it('DTR, RTS and BREAK reach the device as SerialSetLine; their queries answer the state set', async function () {
    const c = await telnet();
    assert.deepEqual([...(await c.request(5, [9]))], [9]);
    assert.deepEqual([...(await c.request(5, [12]))], [12]);
    assert.deepEqual([...(await c.request(5, [5]))], [5]);
    assert.deepEqual([...(await c.request(5, [4]))], [5]);
    assert.deepEqual([...(await c.request(5, [6]))], [6]);
    assert.deepEqual([...(await c.request(5, [7]))], [9]);
    assert.deepEqual([...(await c.request(5, [10]))], [12]);
    const lines = agent.commands.filter((x) => x.op === CommandOp.SerialSetLine).map((x) => [x.target, x.value]);
    assert.deepEqual(lines, [['dtr', 0], ['rts', 0], ['brk', 1], ['brk', 0]]);
    if (!havePySerial()) return;
    agent.commands.length = 0;
    const py = await pyserial();
    await py.must({ op: 'set', name: 'rts', value: false });
    await py.must({ op: 'call', name: 'send_break', args: [0.05] });
    const pyLines = agent.commands.filter((x) => x.op === CommandOp.SerialSetLine).map((x) => [x.target, x.value]);
    assert.deepEqual(pyLines, [['dtr', 1], ['rts', 1], ['rts', 0], ['brk', 1], ['brk', 0]]);
  });

  it('notifies modem-state changes through the mask; pyserial sees them and can poll', async function () {
    const c = await telnet();
    c.send([IAC, WILL, OPT_COM_PORT]);
    assert.deepEqual([...(await c.request(11, [0x80]))], [0x80]);
    const notices = (): number[] => c.comPort().filter((p) => p[0] === 107).map((p) => p[1] as number);
    await c.until('the state after the mask', () => (notices().length >= 2 ? true : undefined));
    agent.setLines(ModemLine.dsr);
    agent.setLines(ModemLine.dsr | ModemLine.dcd);
    await c.until('carrier detect', () => (notices().includes(0x80) ? true : undefined));
    // Once with the default mask 255 (CTS, DSR) and once after the mask (nothing of CD); the CTS drop was masked out.
    assert.deepEqual(notices(), [0x30, 0x00, 0x80]);

    if (!havePySerial()) return;
    const py = await pyserial();
    assert.equal(await py.must({ op: 'get', name: 'cd' }), true);
    agent.setLines(ModemLine.cts);
    await waitUntil(async () => (await py.must({ op: 'get', name: 'cd' })) === false, 'pyserial to see the carrier drop');
    assert.equal(await py.must({ op: 'get', name: 'cts' }), true);
    const polling = await pyserial({}, '?poll_modem');
    agent.lines = ModemLine.ri;
    await waitUntil(async () => (await polling.must({ op: 'get', name: 'ri' })) === true, 'a polled ring indicator');
  });

  it('holds device bytes from FLOWCONTROL-SUSPEND to RESUME; PURGE-DATA drops what it held', async () => {
    const c = await telnet();
    c.send(Buffer.from('one'));
    await c.until('the echo', () => (c.data.toString() === 'one' ? true : undefined));
    c.send([...sub(44, 8), ...Buffer.from('two')]);
    await waitUntil(() => agent.received.toString() === 'onetwo', 'the device to get "two"');
    // The echo is on its way; give it time to arrive, then it must still be held.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.data.toString(), 'one');
    c.send(sub(44, 9));
    await c.until('the held echo', () => (c.data.toString() === 'onetwo' ? true : undefined));

    c.send([...sub(44, 8), ...Buffer.from('three')]);
    await waitUntil(() => agent.received.toString().endsWith('three'), 'the device to get "three"');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual([...(await c.request(12, [1]))], [1]);
    c.send([...sub(44, 9), ...Buffer.from('four')]);
    await c.until('the echo after the purge', () => (c.data.toString().endsWith('four') ? true : undefined));
    assert.equal(c.data.toString(), 'onetwofour');
  });

  it('ignores garbage it can ignore and keeps the connection', async () => {
    const before = stats.get('rfc2217_ignored', { mapping: 'm2217' });
    const c = await telnet();
    const garbage = [IAC, 0xf1, IAC, 0xf6, IAC, SE, ...sub(99, 1, 2), ...sub(44, 50, 1), ...sub(44, 1, 0x25, 0x80), ...sub(44, 5, 99)];
    c.send([...garbage, ...Buffer.from('still here')]);
    await c.until('the echo', () => (c.data.toString() === 'still here' ? true : undefined));
    assert.equal(stats.get('rfc2217_ignored', { mapping: 'm2217' }) - before, 4);
    assert.deepEqual([...(await c.request(2, [0]))], [8]);
  });

  it('closes a connection whose framing is broken, leaving the others untouched', async () => {
    const before = stats.get('rfc2217_protocol_errors', { mapping: 'm2217' });
    const good = await telnet();
    const truncated = await telnet();
    truncated.send(Buffer.from([...Buffer.from('x'), IAC, SB, 44, 1, 0, 0, IAC, DO, 1]));
    await truncated.closed;
    const oversized = await telnet();
    oversized.send(Buffer.concat([Buffer.from([IAC, SB, 44, 0]), Buffer.alloc(600, 0x41), Buffer.from([IAC, SE])]));
    await oversized.closed;
    const empty = await telnet();
    empty.send([IAC, SB, IAC, SE]);
    await empty.closed;
    assert.equal(stats.get('rfc2217_protocol_errors', { mapping: 'm2217' }) - before, 3);

    // Random bytes, each on its own connection: whatever happens to them, the sidecar serves on.
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (bytes) => {
        const g = await TelnetClient.connect(port);
        g.send(Buffer.from(bytes));
        await new Promise((r) => setTimeout(r, 5));
        g.destroy();
      }),
      { numRuns: 30 },
    );
    good.send(Buffer.from('unharmed'));
    await good.until('the echo', () => (good.data.toString() === 'unharmed' ? true : undefined));
  });

  it('moves 2 MiB of 0xFF-dense bytes both ways with a reader that stalls', async () => {
    const c = await telnet();
    const data = Buffer.alloc(2 << 20);
    for (let i = 0; i < data.length; i++) data[i] = i % 2 === 0 ? 0xff : (i >> 3) & 0xff;
    c.socket.pause();
    c.send(escaped(data));
    await new Promise((r) => setTimeout(r, 500));
    c.socket.resume();
    await c.until('the whole echo', () => (c.data.length >= data.length ? true : undefined), 30_000);
    assert.ok(c.data.equals(data), 'the 2 MiB came back changed');
  });

  it('ends the session when the app leaves, and the app connection when the device side ends', async () => {
    const c = await telnet();
    await c.request(2, [0]);
    assert.equal(agent.sessions.size, 1);
    c.socket.end();
    await waitUntil(() => agent.sessions.size === 0, 'the session to end');
    await c.closed;

    const d = await telnet();
    await d.request(2, [0]);
    for (const s of agent.sessions) s.end();
    await d.closed;
  });
});
