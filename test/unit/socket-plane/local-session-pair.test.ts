import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { DeviceMeshError } from '../../../src/errors';
import { CommandOp, type CommandRequest } from '../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../src/socket-plane/device-event';
import { INITIAL_WINDOW } from '../../../src/socket-plane/frame';
import { localSessionPair } from '../../../src/socket-plane/local-session-pair';
import type { Session } from '../../../src/socket-plane/session';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes every chunk as a stream would: waits for `drain` whenever write says so. */
async function writeAll(session: Session, chunks: readonly Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    if (!session.write(chunk)) await new Promise((resolve) => session.once('drain', resolve));
  }
  session.end();
}

const EVENT: DeviceEvent = { type: DeviceEventType.ModemLines, timestampMs: 1, source: 'dcd', value: 1, data: Buffer.alloc(0) };

describe('socket plane: a local session pair (both ends in one process)', () => {
  it('carries any bytes in any split, in order, never more than the window unconsumed, then both ends close', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 96 * 1024 }), { minLength: 1, maxLength: 24 }),
        fc.integer({ min: 1, max: 8 }),
        async (sizes, consumeEvery) => {
          const { consumer, device } = localSessionPair(1, () => true);
          const chunks = sizes.map((n, i) => Buffer.alloc(n, i % 256));
          const received: Buffer[] = [];
          let unconsumed = 0;
          let peak = 0;
          let pending: number[] = [];
          device.on('data', (chunk: Buffer) => {
            received.push(chunk);
            unconsumed += chunk.length;
            peak = Math.max(peak, unconsumed);
            pending.push(chunk.length);
            // A sink that takes its bytes in batches, a turn of the event loop later.
            if (pending.length >= consumeEvery) {
              const batch = pending;
              pending = [];
              setImmediate(() => {
                for (const n of batch) {
                  unconsumed -= n;
                  device.consumed(n);
                }
              });
            }
          });
          const ended = new Promise<void>((resolve) => device.once('end', () => resolve()));
          const drained = setInterval(() => {
            const batch = pending;
            pending = [];
            for (const n of batch) {
              unconsumed -= n;
              device.consumed(n);
            }
          }, 1);
          await writeAll(consumer, chunks);
          await ended;
          clearInterval(drained);
          device.end();
          await tick();
          assert.ok(Buffer.concat(received).equals(Buffer.concat(chunks)), 'every byte, in order');
          assert.ok(peak <= INITIAL_WINDOW, `at most the window unconsumed (peak ${peak})`);
          assert.equal(consumer.closed, true);
          assert.equal(device.closed, true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('answers a consumer’s command from the device end, and rejects the ones outstanding when the device resets', async () => {
    const { consumer, device } = localSessionPair(2, () => true);
    device.on('command', (command: CommandRequest) => {
      if (command.op === CommandOp.SerialGetLines) device.respond({ requestId: command.requestId, ok: true, value: 7, data: Buffer.alloc(0) });
    });
    assert.equal((await consumer.command({ op: CommandOp.SerialGetLines, target: '', value: 0, data: Buffer.alloc(0) })).value, 7);
    const waiting = consumer.command({ op: CommandOp.SerialBreak, target: '', value: 0, data: Buffer.alloc(0) });
    device.reset({ code: 'DEVICE_ERROR', message: 'device removed' });
    await assert.rejects(waiting, (err: unknown) => err instanceof DeviceMeshError && err.code === 'DEVICE_ERROR');
    assert.equal(consumer.closed, true);
  });

  it('drops an event when the consumer’s sink has no room, and says so to the device end', () => {
    let room = true;
    const { consumer, device } = localSessionPair(3, () => room);
    const events: DeviceEvent[] = [];
    consumer.on('event', (e: DeviceEvent) => events.push(e));
    assert.equal(device.sendEvent(EVENT), true);
    room = false;
    assert.equal(device.sendEvent(EVENT), false);
    assert.equal(events.length, 1);
  });

  it('tells the consumer why when the device end refuses its session', async () => {
    const { consumer, device } = localSessionPair(4, () => true);
    const closed = new Promise<DeviceMeshError | undefined>((resolve) => consumer.once('close', resolve));
    device.reset({ code: 'PERMISSION_DENIED', message: 'mapping m is read-only' });
    const err = await closed;
    assert.equal(err?.code, 'PERMISSION_DENIED');
    assert.match(err?.message ?? '', /read-only/);
  });

  it('ends the pair as a protocol error on a command result nobody waits for', () => {
    const { consumer, device } = localSessionPair(5, () => true);
    let consumerError: DeviceMeshError | undefined;
    consumer.once('close', (err?: DeviceMeshError) => (consumerError = err));
    // The device end answers a request that was never made (as a broken peer would).
    device.receiveCommand({ requestId: 99, op: CommandOp.SerialGetLines, target: '', value: 0, data: Buffer.alloc(0) });
    device.respond({ requestId: 99, ok: true, value: 0, data: Buffer.alloc(0) });
    assert.equal(device.closed, true);
    assert.equal(consumerError?.code, 'PROTOCOL_ERROR');
  });
});
