import * as assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { pollForEveryWaiter } from '../../../agent/drivers/poller-workaround';
import { DEFAULT_BAUD_RATE, serialPortOptions } from '../../../agent/drivers/serial-options';

/** The shape of bindings-cpp's Poller: once(event) polls for the event, then waits for it. */
class FakePoller extends EventEmitter {
  readonly polled: number[] = [];
  /** What the native poller was re-armed with. */
  readonly rearmed: number[] = [];
  readonly poller = { poll: (events: number): void => void this.rearmed.push(events) };

  poll(eventFlag = 0): void {
    this.polled.push(eventFlag);
  }

  override once(event: string, listener: (...args: unknown[]) => void): this {
    this.poll(event === 'readable' ? 1 : 2);
    return super.once(event, listener);
  }
}

describe('agent/drivers/serial-driver options', () => {
  it('maps SerialConfig enums to serialport options', () => {
    assert.deepEqual(
      serialPortOptions({ baudRate: 19200, dataBits: 7, parity: 'PARITY_EVEN', stopBits: 'STOP_BITS_ONE_POINT_FIVE', flowControl: 'FLOW_CONTROL_RTSCTS' }),
      { baudRate: 19200, dataBits: 7, parity: 'even', stopBits: 1.5, rtscts: true, xon: false, xoff: false },
    );
    assert.deepEqual(
      serialPortOptions({ baudRate: 115200, dataBits: 8, parity: 'PARITY_SPACE', stopBits: 'STOP_BITS_TWO', flowControl: 'FLOW_CONTROL_XONXOFF' }),
      { baudRate: 115200, dataBits: 8, parity: 'space', stopBits: 2, rtscts: false, xon: true, xoff: true },
    );
  });

  it('fills unset fields with defaults', () => {
    const defaults = { baudRate: DEFAULT_BAUD_RATE, dataBits: 8, parity: 'none', stopBits: 1, rtscts: false, xon: false, xoff: false };
    assert.deepEqual(serialPortOptions(null), defaults);
    assert.deepEqual(
      serialPortOptions({ baudRate: 0, dataBits: 0, parity: 'PARITY_UNSPECIFIED', stopBits: 'STOP_BITS_UNSPECIFIED', flowControl: 'FLOW_CONTROL_UNSPECIFIED' }),
      defaults,
    );
  });

  it('rejects impossible data bits', () => {
    assert.throws(
      () => serialPortOptions({ baudRate: 9600, dataBits: 9, parity: 'PARITY_NONE', stopBits: 'STOP_BITS_ONE', flowControl: 'FLOW_CONTROL_NONE' }),
      /dataBits: 9 is not one of 5, 6, 7, 8/,
    );
  });
});

describe('agent/drivers/poller-workaround', () => {
  it('polls for every event that has a waiter, not only the newest', () => {
    const poller = new FakePoller();
    pollForEveryWaiter({ poller });
    poller.once('readable', () => undefined);
    poller.once('writable', () => undefined);
    assert.deepEqual(poller.polled, [1, 3], 'the write wait keeps the read wait');
    poller.emit('readable');
    poller.once('readable', () => undefined);
    assert.deepEqual(poller.polled, [1, 3, 3]);
    poller.emit('writable');
    poller.emit('readable');
    poller.once('writable', () => undefined);
    assert.deepEqual(poller.polled, [1, 3, 3, 2]);
  });

  it('re-arms the native poll after each event with exactly the events still waited for, not after an error', () => {
    const poller = new FakePoller();
    pollForEveryWaiter({ poller });
    poller.once('readable', () => undefined);
    poller.once('writable', () => undefined);
    poller.emit('writable', null);
    assert.deepEqual(poller.rearmed, [1], 'the write was served: only the read still waits');
    poller.emit('readable', null);
    assert.deepEqual(poller.rearmed, [1, 0], 'nothing waits: the tty being writable no longer wakes the loop');
    poller.once('readable', () => undefined);
    poller.emit('readable', new Error('Canceled'));
    assert.deepEqual(poller.rearmed, [1, 0], 'a stopped poller is left alone');
  });

  it('leaves ports without a poller alone', () => {
    assert.doesNotThrow(() => pollForEveryWaiter({}));
    assert.doesNotThrow(() => pollForEveryWaiter(undefined));
  });
});
