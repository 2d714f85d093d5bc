import { strict as assert } from 'node:assert';
import { Duplex } from 'node:stream';
import type { AccessMember } from '../../../../agent/access/device-access';
import type { DeviceOutput } from '../../../../agent/device/shared-device';
import { SharedDevice } from '../../../../agent/device/shared-device';
import type { DeviceDriver, DeviceEventListener, DeviceHandle } from '../../../../agent/drivers/device-driver';
import { RateMeter } from '../../../../agent/limits/rate-meter';
import { CommandOp } from '../../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../../src/socket-plane/device-event';
import { Stats } from '../../../../src/telemetry/stats';
import { testLogger } from '../helpers';

/** A device stream whose writes report "full" while `full` is set, until drain(). */
class Stream extends Duplex {
  full = false;
  readonly got: Buffer[] = [];
  override _read(): void {
    // Data comes from push() in the tests.
  }
  override write(chunk: Buffer): boolean {
    this.got.push(chunk);
    return !this.full;
  }
}

class Driver implements DeviceDriver {
  readonly kind = 'DEVICE_KIND_SERIAL' as const;
  opens = 0;
  closes = 0;
  stream = new Stream();
  listener: DeviceEventListener | undefined;
  /** Resolves the current close; a reopen must wait for it. */
  releaseClose: (() => void) | undefined;
  slowClose = false;

  validate(): void {
    // Everything is valid here.
  }
  list(): Promise<never[]> {
    return Promise.resolve([]);
  }
  open(path: string): Promise<DeviceHandle> {
    this.opens += 1;
    const stream = new Stream();
    this.stream = stream;
    return Promise.resolve({
      path,
      stream,
      onEvent: (listener: DeviceEventListener): void => void (this.listener = listener),
      update: (): Promise<void> => Promise.resolve(),
      execute: (): Promise<{ value: number; data: Buffer }> => Promise.resolve({ value: 7, data: Buffer.alloc(0) }),
      configuration: (): Promise<Record<string, string>> => Promise.resolve({ opened: String(this.opens) }),
      close: (): Promise<void> => {
        this.closes += 1;
        if (!this.slowClose) return Promise.resolve();
        return new Promise((resolve) => (this.releaseClose = resolve));
      },
    });
  }
}

class Output implements DeviceOutput {
  readonly data: string[] = [];
  readonly events: DeviceEvent[] = [];
  readonly lost: Array<Error | undefined> = [];
  fromDevice(chunk: Buffer): void {
    this.data.push(chunk.toString());
  }
  deviceEvent(event: DeviceEvent): void {
    this.events.push(event);
  }
  deviceLost(cause: Error | undefined): void {
    this.lost.push(cause);
  }
}

const member = (key: string): AccessMember => ({ key }) as unknown as AccessMember;

function rig(): { driver: Driver; output: Output; meter: RateMeter; device: SharedDevice; configurations: Array<Record<string, string>>; stats: Stats } {
  const driver = new Driver();
  const output = new Output();
  const meter = new RateMeter();
  const configurations: Array<Record<string, string>> = [];
  const stats = new Stats();
  const device = new SharedDevice({ path: '/dev/ttyS9', driver, meter, output, stats, log: testLogger(), onConfiguration: (c) => configurations.push(c) });
  return { driver, output, meter, device, configurations, stats };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('agent/device/shared-device: the driver handle of all sessions', () => {
  it('opens once for concurrent opens, reports its configuration, and {} once closed', async () => {
    const r = rig();
    await Promise.all([r.device.open({ serial: null, settings: {} }, 'm1'), r.device.open({ serial: null, settings: {} }, 'm2')]);
    assert.equal(r.driver.opens, 1);
    assert.ok(r.device.isOpen);
    await tick();
    r.device.close('test');
    assert.deepEqual(r.configurations, [{ opened: '1' }, {}]);
    assert.equal(r.driver.closes, 1);
    r.device.close('again');
    assert.equal(r.driver.closes, 1, 'closing a closed device does nothing');
  });

  it('a reopen waits for the previous close', async () => {
    const r = rig();
    r.driver.slowClose = true;
    await r.device.open({ serial: null, settings: {} }, 'm1');
    r.device.close('test');
    const reopened = r.device.open({ serial: null, settings: {} }, 'm1');
    await tick();
    assert.equal(r.driver.opens, 1, 'not before the close is done');
    r.driver.releaseClose?.();
    await reopened;
    assert.equal(r.driver.opens, 2);
  });

  it('a write waits for drain when the device is full; a member that left is forgotten', async () => {
    const r = rig();
    await r.device.open({ serial: null, settings: {} }, 'm1');
    const stream = r.driver.stream;
    stream.full = true;
    const calls: string[] = [];
    const a = member('a');
    const b = member('b');
    r.device.write(a, Buffer.from('1'), () => calls.push('a'));
    r.device.write(b, Buffer.from('2'), () => calls.push('b'));
    r.device.forget(b);
    assert.deepEqual(calls, []);
    stream.emit('drain');
    assert.deepEqual(calls, ['a']);
  });

  it('pauses while any member is held, resumes when the last is released', async () => {
    const r = rig();
    await r.device.open({ serial: null, settings: {} }, 'm1');
    const stream = r.driver.stream;
    const a = member('a');
    const b = member('b');
    r.device.hold(a);
    r.device.hold(b);
    assert.ok(stream.isPaused());
    r.device.release(a);
    assert.ok(stream.isPaused());
    r.device.release(b);
    assert.ok(!stream.isPaused());
  });

  it('output, events and loss go to the output stage; what the device produces is metered', async () => {
    const r = rig();
    await r.device.open({ serial: null, settings: {} }, 'm1');
    r.driver.stream.push(Buffer.from('hello'));
    await tick();
    r.driver.listener?.({ type: DeviceEventType.ModemLines, timestampMs: 0, source: 'dcd', value: 1, data: Buffer.alloc(0) });
    assert.deepEqual(r.output.data, ['hello']);
    assert.equal(r.meter.total, 5);
    assert.equal(r.output.events.length, 1);
    r.driver.stream.emit('error', new Error('EIO'));
    assert.equal(r.output.lost[0]?.message, 'EIO');
    assert.equal(r.device.drop(), true);
    assert.equal(r.device.isOpen, false);
    assert.equal(r.device.drop(), false);
  });

  it('commands run on the open device; not-open ones reject with DeviceError', async () => {
    const r = rig();
    const cmd = { requestId: 1, op: CommandOp.GpioGet, target: '', value: 0, data: Buffer.alloc(0) };
    await assert.rejects(r.device.execute(cmd), /is not open/);
    assert.equal(await r.device.update({ serial: null, settings: {} }), false);
    await r.device.open({ serial: null, settings: {} }, 'm1');
    assert.equal((await r.device.execute(cmd)).value, 7);
    assert.equal(await r.device.update({ serial: null, settings: {} }), true);
  });
});
