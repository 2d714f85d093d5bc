import * as assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { DeviceSessionHost } from '../../../../agent/session/device-session-host';
import type { DeviceConfig, DeviceDriver, DeviceEventListener, DeviceHandle, DiscoveredDevice } from '../../../../agent/drivers/device-driver';
import { DeviceError, type DeviceMeshError, ValidationError } from '../../../../src/errors';
import type { Access, Mapping, SerialConfig, SharingMode } from '../../../../src/proto/types';
import type { ErrorPayload } from '../../../../src/socket-plane/control-messages';
import { CommandOp, type CommandRequest, type CommandResult, type DeviceCommand } from '../../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../../src/socket-plane/device-event';
import { INITIAL_WINDOW } from '../../../../src/socket-plane/frame';
import { Session, type SessionTransport } from '../../../../src/socket-plane/session';
import { Stats } from '../../../../src/telemetry/stats';
import { mapping } from '../../../integration/agent/fake-control-plane';
import { testLogger, waitFor } from '../helpers';
import { EMPTY_POLICY } from '../../../../src/model/policy-defaults';

/** A device as a Duplex: what is written is kept; writes can be held to model a slow device. */
class FakeDevice extends Duplex {
  readonly written: Buffer[] = [];
  hold = false;
  private held: Array<() => void> = [];

  constructor() {
    super({ highWaterMark: 16 * 1024 });
  }

  /** Bytes the device produces. */
  produce(bytes: Buffer): boolean {
    return this.push(bytes);
  }

  release(): void {
    this.hold = false;
    for (const cb of this.held.splice(0)) cb();
  }

  writtenBytes(): Buffer {
    return Buffer.concat(this.written);
  }

  override _read(): void {
    // Data comes from produce().
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written.push(chunk);
    if (this.hold) this.held.push(() => cb());
    else cb();
  }
}

class FakeDriver implements DeviceDriver {
  readonly kind = 'DEVICE_KIND_SERIAL' as const;
  opens: Array<{ path: string; config: SerialConfig | null }> = [];
  closes = 0;
  updates: Array<SerialConfig | null> = [];
  commands: DeviceCommand[] = [];
  failNext: string | undefined;
  refuseUpdate: string | undefined;
  device: FakeDevice | undefined;
  listener: DeviceEventListener | undefined;

  validate(config: DeviceConfig): void {
    if (config.settings.bogus !== undefined) throw new ValidationError('settings.bogus', 'is not a setting of the fake driver');
  }

  open(path: string, config: DeviceConfig): Promise<DeviceHandle> {
    this.opens.push({ path, config: config.serial });
    if (this.failNext) {
      const message = this.failNext;
      this.failNext = undefined;
      return Promise.reject(new DeviceError(`cannot open ${path}: ${message}`));
    }
    const device = new FakeDevice();
    this.device = device;
    return Promise.resolve({
      path,
      stream: device,
      onEvent: (listener: DeviceEventListener): void => {
        this.listener = listener;
      },
      update: (c: DeviceConfig): Promise<void> => {
        if (this.refuseUpdate) return Promise.reject(new DeviceError(this.refuseUpdate));
        this.updates.push(c.serial);
        return Promise.resolve();
      },
      execute: (command: DeviceCommand): Promise<{ value: number; data: Buffer }> => {
        this.commands.push(command);
        return Promise.resolve({ value: 42, data: Buffer.from('ok') });
      },
      configuration: (): Promise<Record<string, string>> => Promise.resolve({ baudRate: String(this.updates.at(-1)?.baudRate ?? config.serial?.baudRate ?? 0) }),
      close: (): Promise<void> => {
        this.closes += 1;
        device.destroy();
        return Promise.resolve();
      },
    });
  }

  list(): Promise<DiscoveredDevice[]> {
    return Promise.resolve([]);
  }
}

/** The wire side of a session, recorded. */
class FakeTransport implements SessionTransport {
  readonly data: Buffer[] = [];
  readonly resets: ErrorPayload[] = [];
  readonly events: DeviceEvent[] = [];
  readonly results: CommandResult[] = [];
  windows = 0;
  closes = 0;
  /** false: the peer is not reading, events are dropped. */
  reading = true;

  sendData(_session: number, chunk: Buffer): void {
    this.data.push(Buffer.from(chunk));
  }
  sendWindow(_session: number, increment: number): void {
    this.windows += increment;
  }
  sendClose(): void {
    this.closes += 1;
  }
  sendReset(_session: number, err: ErrorPayload): void {
    this.resets.push(err);
  }
  sendEvent(_session: number, event: DeviceEvent): boolean {
    if (this.reading) this.events.push(event);
    return this.reading;
  }
  sendCommand(): void {
    throw new Error('the device side sends no commands');
  }
  sendCommandResult(_session: number, result: CommandResult): void {
    this.results.push(result);
  }
  released(): void {
    // Nothing to release in a test.
  }
  received(): Buffer {
    return Buffer.concat(this.data);
  }
}

const PATH = '/dev/ttyTEST0';

function mappingFor(id: string, workloadId: string, sharing: SharingMode = 'SHARING_MODE_EXCLUSIVE', access: Access = 'ACCESS_READ_WRITE'): Mapping {
  return mapping({
    id,
    workloadId,
    devicePath: PATH,
    policy: { ...EMPTY_POLICY, access, sharing },
  });
}

describe('agent/device-session-host', () => {
  let driver: FakeDriver;
  let host: DeviceSessionHost;
  let stats: Stats;
  let nextId: number;

  async function open(m: Mapping): Promise<{ session: Session; transport: FakeTransport }> {
    const port = await host.open(m);
    const transport = new FakeTransport();
    const session = new Session(nextId, transport);
    nextId += 2;
    port.attach(session);
    return { session, transport };
  }

  beforeEach(() => {
    driver = new FakeDriver();
    stats = new Stats();
    host = new DeviceSessionHost({ path: PATH, driver, stats, log: testLogger() });
    nextId = 1;
  });

  it('opens the device with the mapping configuration on the first session and relays both ways', async () => {
    const mapping = mappingFor('m1', 'app1');
    const { session, transport } = await open(mapping);
    assert.equal(driver.opens.length, 1);
    assert.equal(driver.opens[0]?.config?.baudRate, 9600);
    assert.ok(host.isOpen);

    session.receiveData(Buffer.from('AT\r'));
    await waitFor(() => driver.device?.writtenBytes().toString() === 'AT\r', 'the bytes at the device');
    driver.device?.produce(Buffer.from('\r\nOK\r\n'));
    await waitFor(() => transport.received().toString() === '\r\nOK\r\n', 'the answer in the session');
    const labels = { mapping: 'm1', binding: mapping.binding, device: mapping.physicalId };
    assert.equal(stats.get('bytes_to_device', labels), 3);
    assert.equal(stats.get('bytes_from_device', labels), 6);
  });

  it('refuses a second session on an exclusive device without opening it again', async () => {
    await open(mappingFor('m1', 'app1'));
    await assert.rejects(host.open(mappingFor('m2', 'app2')), (err: DeviceMeshError) => {
      assert.equal(err.code, 'RESOURCE_EXHAUSTED');
      assert.equal(err.message, `device ${PATH} is in use by app1`);
      return true;
    });
    await assert.rejects(host.open(mappingFor('m3', 'app3', 'SHARING_MODE_SHARED')), /is in use by app1/);
    assert.equal(driver.opens.length, 1);
    assert.equal(host.sessionCount, 1);
  });

  it('fans device output out to every session in broadcast, takes writes from its one writer; ending one leaves the device open for the rest', async () => {
    const a = await open(mappingFor('m1', 'app1', 'SHARING_MODE_BROADCAST'));
    const b = await open(mappingFor('m2', 'app2', 'SHARING_MODE_BROADCAST', 'ACCESS_READ_ONLY'));
    assert.equal(driver.opens.length, 1, 'one device open for both');
    driver.device?.produce(Buffer.from('hello'));
    await waitFor(() => a.transport.received().toString() === 'hello' && b.transport.received().toString() === 'hello', 'both sessions to get the bytes');

    a.session.receiveData(Buffer.from('from-a;'));
    await waitFor(() => driver.device?.writtenBytes().toString() === 'from-a;', 'the writer\'s bytes at the device');

    // Session a ends (the client half-closes, we close back).
    a.session.receiveClose();
    await waitFor(() => a.session.closed, 'session a to finish');
    assert.equal(a.transport.resets.length, 0);
    assert.ok(!driver.device?.writableEnded, 'the device stream is not ended');
    assert.equal(driver.closes, 0);
    driver.device?.produce(Buffer.from('more'));
    await waitFor(() => b.transport.received().toString() === 'hellomore', 'session b to keep receiving');
    assert.equal(a.transport.received().toString(), 'hello');

    b.session.reset({ code: 'UNAVAILABLE', message: 'client gone' });
    await waitFor(() => driver.closes === 1, 'the device to close after the last session');
    assert.ok(!host.isOpen);
    assert.equal(host.sessionCount, 0);
  });

  it('resets every session with DEVICE_ERROR when the device goes away', async () => {
    const a = await open(mappingFor('m1', 'app1', 'SHARING_MODE_SHARED'));
    const b = await open(mappingFor('m2', 'app2', 'SHARING_MODE_SHARED'));
    const closed: Array<DeviceMeshError | undefined> = [];
    a.session.on('close', (err?: DeviceMeshError) => closed.push(err));
    b.session.on('close', (err?: DeviceMeshError) => closed.push(err));
    // What serialport does on an unplug: 'close' with a disconnect error.
    driver.device?.emit('close', Object.assign(new Error('EIO'), { disconnected: true }));
    const expected = { code: 'DEVICE_ERROR', message: `device ${PATH} removed` };
    assert.deepEqual(a.transport.resets, [expected]);
    assert.deepEqual(b.transport.resets, [expected]);
    assert.deepEqual(closed.map((e) => e?.code), ['DEVICE_ERROR', 'DEVICE_ERROR']);
    await waitFor(() => driver.closes === 1, 'the handle to be released');
    assert.equal(host.sessionCount, 0);

    // Replugged: the next session opens it again.
    await open(mappingFor('m1', 'app1'));
    assert.equal(driver.opens.length, 2);
  });

  it('treats a device stream that ends as gone', async () => {
    const a = await open(mappingFor('m1', 'app1'));
    driver.device?.push(null);
    await waitFor(() => a.session.closed, 'the session to be reset');
    assert.deepEqual(a.transport.resets, [{ code: 'DEVICE_ERROR', message: `device ${PATH} removed` }]);
    assert.ok(!host.isOpen);
  });

  it('resets the sessions of a device the watcher saw vanish, and of a withdrawn mapping', async () => {
    const a = await open(mappingFor('m1', 'app1', 'SHARING_MODE_SHARED'));
    const b = await open(mappingFor('m2', 'app2', 'SHARING_MODE_SHARED'));
    host.resetMapping('m2', { code: 'NOT_FOUND', message: 'binding withdrawn (mapping m2)' });
    assert.deepEqual(b.transport.resets, [{ code: 'NOT_FOUND', message: 'binding withdrawn (mapping m2)' }]);
    assert.equal(a.transport.resets.length, 0);
    host.deviceRemoved();
    assert.deepEqual(a.transport.resets, [{ code: 'DEVICE_ERROR', message: `device ${PATH} removed` }]);
  });

  it('reports a device that does not open, keeps nothing, and tries again next time', async () => {
    driver.failNext = 'EACCES';
    await assert.rejects(host.open(mappingFor('m1', 'app1')), (err: DeviceMeshError) => err.code === 'DEVICE_ERROR' && /EACCES/.test(err.message));
    assert.equal(host.sessionCount, 0);
    await open(mappingFor('m1', 'app1'));
    assert.equal(driver.opens.length, 2);
  });

  it('applies a changed configuration only to an open device used by that mapping', async () => {
    assert.equal(await host.update(mappingFor('m1', 'app1')), false);
    await open(mappingFor('m1', 'app1'));
    const changed = mappingFor('m1', 'app1');
    changed.serial = { ...(changed.serial as SerialConfig), baudRate: 19200 };
    assert.equal(await host.update(changed), true);
    assert.equal(await host.update(mappingFor('other', 'app1')), false);
    assert.deepEqual(driver.updates.map((c) => c?.baudRate), [19200]);
  });

  it('grants the client credit only as fast as the device takes bytes', async () => {
    const { session, transport } = await open(mappingFor('m1', 'app1'));
    const device = driver.device as FakeDevice;
    device.hold = true;
    const chunk = Buffer.alloc(16 * 1024, 1);
    for (let sent = 0; sent < INITIAL_WINDOW; sent += chunk.length) session.receiveData(chunk);
    await new Promise((r) => setTimeout(r, 50));
    const grantedWhileHeld = transport.windows;
    assert.ok(grantedWhileHeld < INITIAL_WINDOW / 2, `granted ${grantedWhileHeld} while the device took nothing`);
    device.release();
    await waitFor(() => device.writtenBytes().length === INITIAL_WINDOW, 'every byte at the device');
    await waitFor(() => transport.windows >= INITIAL_WINDOW * 0.75, 'the credit back');
  });

  it('pauses the device while a session has no send credit, and resumes when it gets some', async () => {
    const { session, transport } = await open(mappingFor('m1', 'app1'));
    const device = driver.device as FakeDevice;
    const chunk = Buffer.alloc(32 * 1024, 2);
    let produced = 0;
    // Produce until the host stops reading the device (the session's window and the port's buffer are full).
    while (produced < 4 * INITIAL_WINDOW && !device.isPaused()) {
      device.produce(chunk);
      produced += chunk.length;
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(device.isPaused(), 'the device is paused');
    assert.equal(transport.received().length, INITIAL_WINDOW, 'no more than the window went out');
    session.receiveWindow(4 * INITIAL_WINDOW);
    await waitFor(() => transport.received().length === produced, 'everything produced to arrive');
    assert.ok(!device.isPaused(), 'the device reads again');
  });

  for (const sharing of ['SHARING_MODE_SHARED', 'SHARING_MODE_TIME_SLICE'] as const) {
    it(`${sharing}: every byte a session sends is charged to the device bucket and counted by the device meter`, async () => {
      const m = mappingFor('m1', 'app1', sharing);
      (m.policy as NonNullable<Mapping['policy']>).deviceBytesPerSecond = '1000';
      const { session, transport } = await open(m);
      const started = performance.now();
      // Five commands of 100 bytes, each answered: 500 bytes to the device, 15 from it.
      session.receiveData(Buffer.from(`${'x'.repeat(99)}\n`.repeat(5)));
      for (let n = 1; n <= 5; n++) {
        await waitFor(() => (driver.device?.writtenBytes().length ?? 0) === 100 * n, `command ${n} at the device`);
        driver.device?.produce(Buffer.from('ok\n'));
      }
      await waitFor(() => transport.received().length === 15, 'the five answers');
      // The bucket refills at 1 token per ms: what is missing beyond that was taken by the commands.
      const refilled = Math.ceil(performance.now() - started) + 1;
      assert.ok(host.deviceBucket.available() <= 1000 - 500 + refilled, `${host.deviceBucket.available()} tokens left`);
      assert.equal(host.deviceMeter.total, 500 + 15, 'the device meter counts writes as well as reads');
    });
  }

  describe('events and commands', () => {
    const event = (value: number): DeviceEvent => ({ type: DeviceEventType.ModemLines, timestampMs: 1, source: 'dcd', value, data: Buffer.alloc(0) });
    const command = (requestId: number, op: CommandOp): CommandRequest => ({ requestId, op, target: 'dtr', value: 1, data: Buffer.alloc(0) });

    it('sends each device event to every session on the device, and counts one a slow consumer misses', async () => {
      const a = await open(mappingFor('m1', 'app1', 'SHARING_MODE_SHARED'));
      const b = await open(mappingFor('m2', 'app2', 'SHARING_MODE_SHARED'));
      driver.listener?.(event(4));
      b.transport.reading = false;
      driver.listener?.(event(0));
      assert.deepEqual(a.transport.events.map((e) => e.value), [4, 0]);
      assert.deepEqual(b.transport.events.map((e) => e.value), [4]);
      assert.equal(stats.get('device_events_dropped', { device: PATH, reason: 'slow_consumer' }), 1);
      assert.equal(stats.get('device_events', { device: PATH, type: 'ModemLines' }), 2);
    });

    it('runs a session command on the device and answers with the request id', async () => {
      const { session, transport } = await open(mappingFor('m1', 'app1'));
      session.receiveCommand(command(7, CommandOp.SerialSetLine));
      await waitFor(() => transport.results.length === 1, 'the result');
      assert.deepEqual(transport.results[0], { requestId: 7, ok: true, value: 42, data: Buffer.from('ok') });
      assert.equal(driver.commands[0]?.op, CommandOp.SerialSetLine);
    });

    it('refuses a command that changes the device on a read-only mapping, and runs one that reads', async () => {
      const { session, transport } = await open(mappingFor('m1', 'app1', 'SHARING_MODE_EXCLUSIVE', 'ACCESS_READ_ONLY'));
      session.receiveCommand(command(1, CommandOp.SerialSetLine));
      session.receiveCommand(command(2, CommandOp.SerialGetLines));
      await waitFor(() => transport.results.length === 2, 'both results');
      const [first, second] = transport.results;
      assert.equal(first?.ok, false);
      assert.equal(first?.ok === false && first.code, 'PERMISSION_DENIED');
      assert.equal(second?.ok, true);
      assert.deepEqual(driver.commands.map((c) => c.op), [CommandOp.SerialGetLines]);
      assert.equal(stats.get('commands_refused', { mapping: 'm1', reason: 'read_only' }), 1);
    });

    it('refuses a read-only mapping\'s data in every sharing mode: the session is reset with the reason, the device gets nothing, it is counted', async () => {
      for (const sharing of ['SHARING_MODE_EXCLUSIVE', 'SHARING_MODE_SHARED', 'SHARING_MODE_BROADCAST'] as const) {
        const { session, transport } = await open(mappingFor(`ro-${sharing}`, 'app1', sharing, 'ACCESS_READ_ONLY'));
        session.receiveData(Buffer.from('AT+WRITE\r'));
        await waitFor(() => transport.resets.length === 1, `the reset (${sharing})`);
        assert.equal(transport.resets[0]?.code, 'PERMISSION_DENIED');
        assert.match(transport.resets[0]?.message ?? '', new RegExp(`mapping ro-${sharing} is read-only: the app may not write to device`));
        assert.equal(driver.device?.writtenBytes().length ?? 0, 0, `no byte reached the device (${sharing})`);
        assert.equal(stats.get('writes_refused', { mapping: `ro-${sharing}`, reason: 'read_only' }), 1);
        await waitFor(() => !host.isOpen, 'the device to close');
      }
    });

    it('answers a pinned mapping\'s line-setting change with the setting in use, and lets a read-only mapping only ask', async () => {
      const pinned = mappingFor('m1', 'app1', 'SHARING_MODE_SHARED');
      (pinned.policy as NonNullable<Mapping['policy']>).pinSerial = true;
      const a = await open(pinned);
      const b = await open(mappingFor('m2', 'app2', 'SHARING_MODE_SHARED', 'ACCESS_READ_ONLY'));
      a.session.receiveCommand({ requestId: 1, op: CommandOp.SerialConfigure, target: 'baudRate', value: 300, data: Buffer.alloc(0) });
      b.session.receiveCommand({ requestId: 2, op: CommandOp.SerialConfigure, target: 'baudRate', value: 300, data: Buffer.alloc(0) });
      b.session.receiveCommand({ requestId: 3, op: CommandOp.SerialConfigure, target: 'baudRate', value: 0, data: Buffer.alloc(0) });
      await waitFor(() => a.transport.results.length === 1 && b.transport.results.length === 2, 'the results');
      assert.deepEqual(driver.commands.map((c) => c.value), [0, 0], 'the driver was only asked');
      assert.equal(b.transport.results[0]?.ok === false && b.transport.results[0].code, 'PERMISSION_DENIED');
      assert.equal(stats.get('serial_changes_pinned', { device: PATH, setting: 'baudRate' }), 1);
    });

    it('refuses to open for a mapping whose settings the driver refuses, with its reason', async () => {
      const m = mappingFor('m1', 'app1');
      m.settings = { bogus: '1' };
      await assert.rejects(host.open(m), /settings\.bogus: is not a setting of the fake driver/);
      assert.equal(driver.opens.length, 0);
    });

    it('reports the configuration read back after open and change, the refusal of a change, and {} once closed', async () => {
      const reports: Array<Record<string, string>> = [];
      host = new DeviceSessionHost({ path: PATH, driver, stats, log: testLogger(), onConfiguration: (c) => reports.push(c) });
      const { session } = await open(mappingFor('m1', 'app1'));
      await waitFor(() => reports.length === 1, 'the first report');
      assert.deepEqual(reports[0], { baudRate: '9600' });
      const changed = mappingFor('m1', 'app1');
      changed.serial = { ...(changed.serial as SerialConfig), baudRate: 57600 };
      await host.update(changed);
      await waitFor(() => reports.length === 2, 'the report after the change');
      assert.deepEqual(reports[1], { baudRate: '57600' });
      driver.refuseUpdate = 'the device says no';
      await assert.rejects(host.update(changed), /the device says no/);
      session.end();
      session.receiveClose();
      await waitFor(() => reports.some((r) => Object.keys(r).length === 0), 'the empty report after close');
    });
  });
});
