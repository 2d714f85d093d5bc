import { strict as assert } from 'node:assert';
import { CommandQueue } from '../../../../agent/exchange/command-queue';
import { RequestSplitter } from '../../../../agent/exchange/request-splitter';
import { TimeSliceScheduler } from '../../../../agent/exchange/time-slice-scheduler';
import { settle, VirtualTime } from './virtual-time';

/** A small deterministic generator, so that a failing run can be repeated. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('exchange: time-slice sharing through the command queue', () => {
  for (const seed of [1, 7, 42]) {
    it(`streams cut into whole commands, never two in flight, answers to senders, device time by weight (seed ${seed})`, async () => {
      const time = new VirtualTime();
      const random = lcg(seed);
      const weights: Record<string, number> = { a: 1, b: 2, c: 1 };
      const scheduler = new TimeSliceScheduler({ sliceMs: 50, weight: (c) => weights[c] ?? 1 });
      let busy: string | undefined;
      let handovers = 0;
      let last = '';
      const queue: CommandQueue = new CommandQueue({
        depth: 64,
        perConsumer: 8,
        rule: { kind: 'terminator', terminator: Buffer.from('\n') },
        maxResponseBytes: 1024,
        scheduler,
        now: time.now,
        timers: time,
        write: (request) => {
          const text = request.toString('latin1');
          assert.equal(busy, undefined, `${text} written while ${busy} is in flight`);
          assert.match(text, /^[abc]:\d+;$/, 'a whole command');
          busy = text;
          if (text[0] !== last) handovers++;
          last = text[0] as string;
          time.setTimeout(() => {
            busy = undefined;
            queue.onDeviceData(Buffer.from(`done ${text}\n`));
          }, 1 + random() * 60);
        },
        unsolicited: (chunk) => assert.fail(`unsolicited ${chunk.toString()}`),
      });
      const answered: Record<string, number> = { a: 0, b: 0, c: 0 };
      const feeders = ['a', 'b', 'c'].map((consumer) => {
        const splitter = new RequestSplitter(Buffer.from(';'), 256);
        let unsent = '';
        let n = 0;
        let outstanding = 0;
        const feed = (): void => {
          while (outstanding < 4) {
            if (unsent.length < 20) unsent += `${consumer}:${n++};`;
            // The stream reaches the agent in arbitrary pieces.
            const size = 1 + Math.floor(random() * 6);
            const chunk = unsent.slice(0, size);
            unsent = unsent.slice(size);
            for (const command of splitter.push(Buffer.from(chunk, 'latin1'))) {
              outstanding++;
              const request = command.toString('latin1');
              queue.submit({ consumer, priority: 0, request: command, timeoutMs: 5000 }).then((response) => {
                assert.equal(response.toString('latin1'), `done ${request}\n`);
                answered[consumer]!++;
                outstanding--;
                feed();
              }, assert.fail);
            }
          }
        };
        return feed;
      });
      for (const feed of feeders) feed();
      while (time.now() < 10_000) {
        const next = time.next;
        assert.ok(next !== undefined, 'the exchange stalled');
        time.advance(next - time.now());
        await settle();
      }
      queue.close();
      const times = ['a', 'b', 'c'].map((c) => scheduler.deviceTime(c));
      const total = times.reduce((x, y) => x + y, 0);
      const shares = times.map((t) => t / total);
      assert.ok(total > 9_500, `device busy ${total} of 10000 ms`);
      const shown = `shares ${shares.map((s) => (s * 100).toFixed(1))}`;
      [0.25, 0.5, 0.25].forEach((want, i) => assert.ok(Math.abs((shares[i] as number) - want) < 0.05, shown));
      assert.ok(handovers > 50, `${handovers} handovers`);
      assert.ok(Object.values(answered).every((n) => n > 50), JSON.stringify(answered));
    });
  }
});
