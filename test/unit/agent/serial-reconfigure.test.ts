import * as assert from 'node:assert/strict';
import { MockBinding, type MockPortBinding } from '@serialport/binding-mock';
import type { BindingInterface, OpenOptions } from '@serialport/bindings-interface';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import type { SerialConfig } from '../../../src/proto/types';
import { DeviceError } from '../../../src/errors';
import { lineConfig, waitFor } from './helpers';

const PATH = '/dev/ttyRECONF';

/** MockBinding behind the same BindingInterface, recording every open's options and every byte written. */
class RecordingBinding implements BindingInterface<MockPortBinding> {
  readonly opens: OpenOptions[] = [];
  readonly ports: MockPortBinding[] = [];
  written: Buffer[] = [];
  failNextOpen = false;

  async open(options: OpenOptions): Promise<MockPortBinding> {
    this.opens.push({ ...options });
    if (this.failNextOpen) {
      this.failNextOpen = false;
      throw new Error('simulated open failure');
    }
    const port = await MockBinding.open(options);
    const write = port.write.bind(port);
    port.write = async (buffer: Buffer): Promise<void> => {
      await write(buffer);
      this.written.push(Buffer.from(buffer));
    };
    this.ports.push(port);
    return port;
  }

  list(): ReturnType<BindingInterface['list']> {
    return MockBinding.list();
  }

  get current(): MockPortBinding {
    return this.ports[this.ports.length - 1] as MockPortBinding;
  }
}

const base: SerialConfig = { baudRate: 9600, dataBits: 8, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' };

function optionsOf(o: OpenOptions): Record<string, unknown> {
  const { baudRate, dataBits, parity, stopBits, rtscts, xon, xoff, lock } = o;
  return { baudRate, dataBits, parity, stopBits, rtscts, xon, xoff, lock };
}

describe('agent/drivers/serial-driver reconfiguration (reopen under the same stream)', () => {
  let binding: RecordingBinding;
  let handle: DeviceHandle | undefined;

  beforeEach(() => {
    MockBinding.reset();
    MockBinding.createPort(PATH, { echo: false, record: false });
    binding = new RecordingBinding();
  });

  afterEach(async () => {
    await handle?.close().catch(() => undefined);
    handle = undefined;
    MockBinding.reset();
  });

  it('reopens with exactly the new parity, data bits, stop bits and flow control', async () => {
    handle = await new SerialDriver(binding).open(PATH, lineConfig(base));
    const stream = handle.stream;
    assert.equal(binding.opens.length, 1);
    await handle.update(lineConfig({ ...base, dataBits: 7, parity: 'PARITY_EVEN', stopBits: 'STOP_BITS_TWO', flowControl: 'FLOW_CONTROL_RTSCTS' }));
    assert.equal(binding.opens.length, 2);
    assert.deepEqual(optionsOf(binding.opens[1] as OpenOptions), {
      baudRate: 9600, dataBits: 7, parity: 'even', stopBits: 2, rtscts: true, xon: false, xoff: false, lock: true,
    });
    assert.equal(binding.ports[0]?.isOpen, false, 'the old port is closed');
    assert.equal(handle.stream, stream, 'the same stream object');
    // Baud rate alone: changed on the open port, no reopen.
    await handle.update(lineConfig({ ...base, baudRate: 57600, dataBits: 7, parity: 'PARITY_EVEN', stopBits: 'STOP_BITS_TWO', flowControl: 'FLOW_CONTROL_RTSCTS' }));
    assert.equal(binding.opens.length, 2);
    assert.equal(binding.current.port.openOpt?.baudRate, 57600);
    // Flow control back to XON/XOFF together with a baud change: one reopen with all of it.
    await handle.update(lineConfig({ ...base, baudRate: 19200, flowControl: 'FLOW_CONTROL_XONXOFF' }));
    assert.equal(binding.opens.length, 3);
    assert.deepEqual(optionsOf(binding.opens[2] as OpenOptions), {
      baudRate: 19200, dataBits: 8, parity: 'none', stopBits: 1, rtscts: false, xon: true, xoff: true, lock: true,
    });
    // Nothing changed: nothing reopened.
    await handle.update(lineConfig({ ...base, baudRate: 19200, flowControl: 'FLOW_CONTROL_XONXOFF' }));
    assert.equal(binding.opens.length, 3);
  });

  it('keeps bytes written before, during and after the reopen in order, and reads after it', async () => {
    handle = await new SerialDriver(binding).open(PATH, lineConfig(base));
    const stream = handle.stream;
    const got: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => got.push(chunk));
    const expected: Buffer[] = [];
    const send = (s: string): void => {
      const b = Buffer.from(s);
      expected.push(b);
      stream.write(b);
    };
    for (let i = 0; i < 20; i++) send(`before-${i};`);
    const updating = handle.update(lineConfig({ ...base, parity: 'PARITY_ODD', stopBits: 'STOP_BITS_TWO' }));
    for (let i = 0; i < 20; i++) send(`during-${i};`);
    // Past the highWaterMark while the port is closed: backpressure, then 'drain'.
    const big = Buffer.alloc(128 * 1024, 0x61);
    expected.push(big);
    assert.equal(stream.write(big), false, 'write() reports backpressure while waiting');
    const drained = new Promise((resolve) => stream.once('drain', resolve));
    await updating;
    await drained;
    for (let i = 0; i < 20; i++) send(`after-${i};`);
    const want = Buffer.concat(expected);
    await waitFor(() => Buffer.concat(binding.written).length >= want.length, 'every byte written');
    assert.ok(Buffer.concat(binding.written).equals(want), 'the bytes arrive once each, in order');
    assert.equal(binding.opens.length, 2);
    assert.ok(binding.written.length > 0);
    // Reads continue from the new port.
    binding.current.emitData(Buffer.from('hello after reopen'));
    await waitFor(() => Buffer.concat(got).toString() === 'hello after reopen', 'data read after the reopen');
  });

  it('runs updates one at a time and close after them', async () => {
    handle = await new SerialDriver(binding).open(PATH, lineConfig(base));
    const a = handle.update(lineConfig({ ...base, parity: 'PARITY_ODD' }));
    const b = handle.update(lineConfig({ ...base, parity: 'PARITY_EVEN' }));
    const closed = handle.close();
    await Promise.all([a, b, closed]);
    assert.deepEqual(binding.opens.map((o) => o.parity), ['none', 'odd', 'even']);
    assert.equal(binding.current.isOpen, false);
    handle = undefined;
  });

  it('leaves the device errored with a DeviceError when the reopen fails', async () => {
    handle = await new SerialDriver(binding).open(PATH, lineConfig(base));
    const stream = handle.stream;
    const events: string[] = [];
    let error: Error | undefined;
    stream.on('error', (err: Error) => {
      error = err;
      events.push('error');
    });
    stream.on('close', () => events.push('close'));
    binding.failNextOpen = true;
    await assert.rejects(handle.update(lineConfig({ ...base, dataBits: 7 })), (err: unknown) => {
      assert.ok(err instanceof DeviceError);
      assert.match(err.message, /ttyRECONF: cannot reopen with the new settings: simulated open failure/);
      return true;
    });
    await waitFor(() => events.includes('close'), 'the stream to close');
    assert.ok(error instanceof DeviceError);
    assert.deepEqual(events, ['error', 'close']);
    assert.equal(stream.destroyed, true);
    await handle.close();
    handle = undefined;
    // The device is free again for the next open.
    handle = await new SerialDriver(binding).open(PATH, lineConfig(base));
  });
});
