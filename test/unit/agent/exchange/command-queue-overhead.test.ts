import { strict as assert } from 'node:assert';
import { CommandQueue } from '../../../../agent/exchange/command-queue';
import { type Command, PriorityScheduler } from '../../../../agent/exchange/command-scheduler';

const N = 20_000;
const BATCH = 1000;

function median(samples: Float64Array): number {
  const sorted = Float64Array.from(samples).sort();
  return sorted[sorted.length >> 1] as number;
}

/**
 * A micro-benchmark, printed and not asserted: submit → write → response → resolve with a device
 * that answers inside write(), against the same promise round trip without the queue.
 */
describe('exchange: command queue overhead (micro-benchmark)', () => {
  it('prints µs per command, queue vs. a bare promise round trip', async () => {
    const answer = Buffer.from('OK\r\n');
    const request = Buffer.from('AT\r\n');
    const command: Command = { consumer: 'x', priority: 0, request, timeoutMs: 1000 };
    const queue: CommandQueue = new CommandQueue({
      depth: N,
      perConsumer: N,
      rule: { kind: 'terminator', terminator: Buffer.from('\r\n') },
      maxResponseBytes: 1024,
      scheduler: new PriorityScheduler(),
      write: () => {
        if (answering) queue.onDeviceData(answer);
      },
      unsolicited: () => assert.fail('no unsolicited output expected'),
    });
    let answering = true;
    let deliver: ((response: Buffer) => void) | undefined;
    const bare = (): Promise<Buffer> => new Promise<Buffer>((resolve) => {
      deliver = resolve;
      deliver(answer);
    });

    const viaQueue = new Float64Array(N);
    const viaBare = new Float64Array(N);
    for (let round = 0; round < 2; round++) {
      // Round 0 warms up; round 1 is measured.
      for (let i = 0; i < N; i++) {
        let t = performance.now();
        const r1 = await queue.submit(command);
        viaQueue[i] = performance.now() - t;
        t = performance.now();
        const r2 = await bare();
        viaBare[i] = performance.now() - t;
        assert.ok(r1.equals(answer) && r2.equals(answer));
      }
    }
    // Queued: batches of BATCH commands wait while the device is silent, then go through in one go.
    const perBatch = new Float64Array(20);
    for (let b = 0; b < perBatch.length; b++) {
      answering = false;
      const start = performance.now();
      const pending = Array.from({ length: BATCH }, () => queue.submit(command));
      answering = true;
      queue.onDeviceData(answer);
      const all = await Promise.all(pending);
      perBatch[b] = (performance.now() - start) / BATCH;
      assert.ok(all.every((r) => r.equals(answer)));
    }
    assert.equal(queue.stats.completed, 2 * N + perBatch.length * BATCH);
    queue.close();

    const queued = median(perBatch) * 1000;
    const q = median(viaQueue) * 1000;
    const b = median(viaBare) * 1000;
    console.log(
      `      command queue: p50 ${q.toFixed(2)} µs/command sequential (bare promise ${b.toFixed(2)} µs, added ${(q - b).toFixed(2)} µs);` +
        ` ${queued.toFixed(2)} µs/command with ${BATCH} queued at once (median of ${perBatch.length} batches)`,
    );
  });
});
