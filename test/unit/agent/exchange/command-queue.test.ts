import { strict as assert } from 'node:assert';
import { CommandQueue, type CommandQueueOptions } from '../../../../agent/exchange/command-queue';
import { type Command, type CommandScheduler, PriorityScheduler } from '../../../../agent/exchange/command-scheduler';
import { DeviceError, DeviceMeshError, ResourceExhaustedError, TimeoutError, UnavailableError, ValidationError } from '../../../../src/errors';
import { settle, VirtualTime } from './virtual-time';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

function cmd(consumer: string, request: string, priority = 0, timeoutMs = 1000): Command {
  return { consumer, priority, request: latin1(request), timeoutMs };
}

/** A promise's outcome, readable synchronously once settled. */
interface Outcome {
  settled: boolean;
  value?: string;
  error?: unknown;
}

function track(promise: Promise<Buffer>): Outcome {
  const outcome: Outcome = { settled: false };
  promise.then(
    (value) => Object.assign(outcome, { settled: true, value: value.toString('latin1') }),
    (error: unknown) => Object.assign(outcome, { settled: true, error }),
  );
  return outcome;
}

interface Setup {
  queue: CommandQueue;
  time: VirtualTime;
  writes: string[];
  unsolicited: string[];
}

function setup(overrides: Partial<CommandQueueOptions> = {}): Setup {
  const time = new VirtualTime();
  const writes: string[] = [];
  const unsolicited: string[] = [];
  const queue = new CommandQueue({
    depth: 16,
    perConsumer: 8,
    rule: { kind: 'terminator', terminator: latin1('\n') },
    maxResponseBytes: 1024,
    scheduler: new PriorityScheduler(),
    write: (request) => writes.push(request.toString('latin1')),
    unsolicited: (chunk) => unsolicited.push(chunk.toString('latin1')),
    now: time.now,
    timers: time,
    ...overrides,
  });
  return { queue, time, writes, unsolicited };
}

function rejectedWith(outcome: Outcome, type: new (...args: never[]) => DeviceMeshError, message?: string | RegExp): void {
  assert.ok(outcome.settled, 'settled');
  assert.ok(outcome.error instanceof type, `expected ${type.name}, got ${String(outcome.error)} (value ${outcome.value})`);
  if (typeof message === 'string') assert.equal(outcome.error.message, message);
  else if (message) assert.match(outcome.error.message, message);
}

describe('exchange: command queue', () => {
  it('has one command in flight at a time, in arrival order, each response only to its sender', async () => {
    const { queue, writes } = setup();
    const a = track(queue.submit(cmd('x', 'A\n')));
    const b = track(queue.submit(cmd('y', 'B\n')));
    const c = track(queue.submit(cmd('x', 'C\n')));
    assert.deepEqual(writes, ['A\n']);
    assert.equal(queue.inFlight?.request.toString(), 'A\n');
    assert.equal(queue.waiting, 2);
    queue.onDeviceData(latin1('ra'));
    assert.deepEqual(writes, ['A\n'], 'no second write before the response is complete');
    queue.onDeviceData(latin1('\n'));
    assert.deepEqual(writes, ['A\n', 'B\n']);
    queue.onDeviceData(latin1('rb\n'));
    queue.onDeviceData(latin1('r'));
    queue.onDeviceData(latin1('c\n'));
    await settle();
    assert.deepEqual([a.value, b.value, c.value], ['ra\n', 'rb\n', 'rc\n']);
    assert.deepEqual(writes, ['A\n', 'B\n', 'C\n']);
    assert.equal(queue.inFlight, undefined);
    assert.equal(queue.stats.completed, 3);
  });

  it('dispatches the highest priority first, in arrival order within a priority', async () => {
    const { queue, writes } = setup();
    const done = [queue.submit(cmd('w', 'first\n')), queue.submit(cmd('x', 'low\n', 1)), queue.submit(cmd('y', 'high\n', 9))];
    done.push(queue.submit(cmd('z', 'mid\n', 5)), queue.submit(cmd('x', 'high2\n', 9)));
    for (let i = 0; i < 5; i++) queue.onDeviceData(latin1('ok\n'));
    await Promise.all(done);
    assert.deepEqual(writes, ['first\n', 'high\n', 'high2\n', 'mid\n', 'low\n']);
  });

  it('caps each consumer (waiting + in flight) with a clear error, leaving room for the others', async () => {
    const { queue } = setup({ perConsumer: 2 });
    const x1 = track(queue.submit(cmd('x', '1\n')));
    track(queue.submit(cmd('x', '2\n')));
    const x3 = track(queue.submit(cmd('x', '3\n')));
    const y1 = track(queue.submit(cmd('y', '1\n')));
    await settle();
    rejectedWith(x3, ResourceExhaustedError, 'x already has 2 commands queued (limit 2)');
    assert.equal(y1.settled, false);
    queue.onDeviceData(latin1('r\n'));
    await settle();
    assert.equal(x1.value, 'r\n');
    const x4 = track(queue.submit(cmd('x', '4\n')));
    await settle();
    assert.equal(x4.settled, false, 'room again once one of x is done');
    assert.equal(queue.stats.refused, 1);
  });

  it('refuses a command when the queue (waiting + in flight) is full, never dropping one', async () => {
    const { queue } = setup({ depth: 3, perConsumer: 3 });
    const accepted = ['a', 'b', 'c'].map((c) => track(queue.submit(cmd(c, `${c}\n`))));
    const refused = track(queue.submit(cmd('d', 'd\n')));
    await settle();
    rejectedWith(refused, ResourceExhaustedError, 'command queue of 3 is full');
    for (let i = 0; i < 3; i++) queue.onDeviceData(latin1(`r${i}\n`));
    await settle();
    assert.deepEqual(accepted.map((o) => o.value), ['r0\n', 'r1\n', 'r2\n']);
    assert.deepEqual(queue.stats, { dispatched: 3, completed: 3, timedOut: 0, refused: 1, waitMsTotal: 0 });
  });

  it('times a command out from its dispatch; its late answer goes to unsolicited until the next dispatch', async () => {
    const { queue, time, writes, unsolicited } = setup();
    time.advance(40);
    const slow = track(queue.submit(cmd('x', 'S\n', 0, 100)));
    time.advance(99);
    await settle();
    assert.equal(slow.settled, false);
    time.advance(1);
    await settle();
    rejectedWith(slow, TimeoutError, 'no response within 100 ms');
    assert.equal((slow.error as DeviceMeshError).code, 'DEADLINE_EXCEEDED');
    queue.onDeviceData(latin1('late\n'));
    assert.deepEqual(unsolicited, ['late\n']);
    const next = track(queue.submit(cmd('y', 'N\n')));
    queue.onDeviceData(latin1('fresh\n'));
    await settle();
    assert.equal(next.value, 'fresh\n');
    assert.deepEqual(writes, ['S\n', 'N\n']);
    assert.equal(queue.stats.timedOut, 1);
    assert.equal(time.armed, 0, 'no timer left behind');
  });

  it('the device going away mid-command rejects the in-flight and every waiting command, and later submits until reset', async () => {
    const { queue, time } = setup();
    const all = ['x', 'y', 'z', 'x'].map((c, i) => track(queue.submit(cmd(c, `${i}\n`))));
    queue.onDeviceData(latin1('partial'));
    const gone = new DeviceError('device /dev/ttyUSB0 was removed');
    queue.fail(gone);
    const after = track(queue.submit(cmd('y', 'again\n')));
    await settle();
    for (const o of [...all, after]) assert.equal(o.error, gone);
    assert.equal(queue.waiting, 0);
    assert.equal(queue.inFlight, undefined);
    assert.equal(time.armed, 0);
    queue.reset();
    const back = track(queue.submit(cmd('y', 'back\n')));
    queue.onDeviceData(latin1('fine\n'));
    await settle();
    assert.equal(back.value, 'fine\n', 'the bytes of the failed response are not in the next one');
  });

  it('a consumer leaving: its waiting commands reject, its in-flight one ends unseen, the others go on', async () => {
    const { queue, writes, unsolicited } = setup();
    const x1 = track(queue.submit(cmd('x', 'x1\n')));
    const y1 = track(queue.submit(cmd('y', 'y1\n')));
    const x2 = track(queue.submit(cmd('x', 'x2\n')));
    queue.removeConsumer('x');
    await settle();
    rejectedWith(x1, UnavailableError, 'consumer left');
    rejectedWith(x2, UnavailableError, 'consumer left');
    assert.equal(queue.inFlight?.consumer, 'x', 'x1 still holds the device: its answer must not become y1');
    assert.deepEqual(writes, ['x1\n']);
    queue.onDeviceData(latin1('answer to'));
    queue.onDeviceData(latin1(' x1\n'));
    queue.onDeviceData(latin1('answer to y1\n'));
    await settle();
    assert.equal(y1.value, 'answer to y1\n');
    assert.deepEqual(writes, ['x1\n', 'y1\n']);
    assert.deepEqual(unsolicited, [], 'the orphaned answer went to no one');
    assert.equal(queue.waiting, 0);
  });

  it('handshake: each request waits for the ready prompt after the last response; the prompt is unsolicited output', async () => {
    const { queue, writes, unsolicited } = setup({ ready: /> $/ });
    const a = track(queue.submit(cmd('x', 'a\n')));
    const b = track(queue.submit(cmd('y', 'b\n')));
    assert.deepEqual(writes, ['a\n'], 'ready at first');
    queue.onDeviceData(latin1('ra\n>'));
    assert.deepEqual(writes, ['a\n'], 'half a prompt is no prompt');
    assert.equal(queue.inFlight?.consumer, 'y', 'b is dispatched (its timeout runs) but not written');
    queue.onDeviceData(latin1(' '));
    assert.deepEqual(writes, ['a\n', 'b\n']);
    queue.onDeviceData(latin1('rb\n'));
    await settle();
    assert.deepEqual([a.value, b.value], ['ra\n', 'rb\n']);
    assert.deepEqual(unsolicited, ['>', ' ']);
    queue.onDeviceData(latin1('> '));
    const c = track(queue.submit(cmd('x', 'c\n')));
    assert.deepEqual(writes, ['a\n', 'b\n', 'c\n'], 'a prompt shown while idle counts');
    queue.onDeviceData(latin1('rc\n'));
    await settle();
    assert.equal(c.value, 'rc\n');
  });

  it('handshake: no prompt within the timeout is a TimeoutError saying so; the ready pattern fences off a late answer', async () => {
    const { queue, time, writes } = setup({ ready: /> $/ });
    const a = track(queue.submit(cmd('x', 'a\n', 0, 100)));
    const b = track(queue.submit(cmd('y', 'b\n', 0, 100)));
    time.advance(100);
    await settle();
    rejectedWith(a, TimeoutError, 'no response within 100 ms');
    assert.deepEqual(writes, ['a\n'], 'b waits for the prompt that follows a late answer');
    queue.onDeviceData(latin1('late a\n> '));
    assert.deepEqual(writes, ['a\n', 'b\n']);
    queue.onDeviceData(latin1('rb\n'));
    const c = track(queue.submit(cmd('z', 'c\n', 0, 50)));
    await settle();
    assert.equal(b.value, 'rb\n', 'the late answer did not become b\'s');
    time.advance(50);
    await settle();
    rejectedWith(c, TimeoutError, /no response within 50 ms \(the device showed no ready prompt \/> \$\/\)/);
  });

  it('handshake: a command whose consumer leaves while it waits for the prompt is never written', async () => {
    const { queue, writes } = setup({ ready: /> $/ });
    track(queue.submit(cmd('x', 'a\n')));
    const b = track(queue.submit(cmd('y', 'b\n')));
    const c = track(queue.submit(cmd('z', 'c\n')));
    queue.onDeviceData(latin1('ra\n'));
    assert.equal(queue.inFlight?.consumer, 'y');
    queue.removeConsumer('y');
    assert.equal(queue.inFlight?.consumer, 'z', 'the device went to the next command at once');
    queue.onDeviceData(latin1('> '));
    queue.onDeviceData(latin1('rc\n'));
    await settle();
    rejectedWith(b, UnavailableError, 'consumer left');
    assert.equal(c.value, 'rc\n');
    assert.deepEqual(writes, ['a\n', 'c\n']);
  });

  it('output while idle, and after a response in the same chunk, goes to unsolicited', async () => {
    const { queue, unsolicited } = setup();
    queue.onDeviceData(latin1('RING\r\n'));
    const a = track(queue.submit(cmd('x', 'a\n')));
    queue.onDeviceData(latin1('ra\n+CMTI: "SM",3\r\n'));
    await settle();
    assert.equal(a.value, 'ra\n');
    assert.deepEqual(unsolicited, ['RING\r\n', '+CMTI: "SM",3\r\n']);
  });

  it('idle-gap framing: the response ends after gapMs of quiet, with one quiet timer per command, not per chunk', async () => {
    const { queue, time } = setup({ rule: { kind: 'idleGap', gapMs: 50 } });
    const a = track(queue.submit(cmd('x', 'a\n', 0, 10_000)));
    time.advance(500);
    await settle();
    assert.equal(a.settled, false, 'no quiet time before the first byte');
    let most = 0;
    for (let i = 0; i < 20; i++) {
      queue.onDeviceData(latin1(`${i},`));
      most = Math.max(most, time.armed);
      time.advance(30);
    }
    await settle();
    assert.equal(a.settled, false);
    assert.ok(most <= 2, `${most} timers armed`);
    time.advance(19);
    await settle();
    assert.equal(a.settled, false);
    time.advance(1);
    await settle();
    assert.equal(a.value, Array.from({ length: 20 }, (_, i) => `${i},`).join(''));
    assert.equal(time.armed, 0);
  });

  it('an oversized response rejects its command with ResourceExhaustedError; the device goes on serving', async () => {
    const { queue, unsolicited } = setup({ maxResponseBytes: 8 });
    const a = track(queue.submit(cmd('x', 'a\n')));
    const b = track(queue.submit(cmd('y', 'b\n')));
    queue.onDeviceData(latin1('0123456789\n'));
    await settle();
    rejectedWith(a, ResourceExhaustedError, /exceeds the limit of 8 bytes/);
    queue.onDeviceData(latin1('rb\n'));
    await settle();
    assert.equal(b.value, 'rb\n');
    assert.deepEqual(unsolicited, []);
  });

  it('a device answering inside write(): 2,000 queued commands complete in one go, in order, without recursion', async () => {
    let answering = false;
    let queueRef: CommandQueue | undefined;
    const { queue } = setup({
      depth: 5000,
      perConsumer: 5000,
      write: (request) => {
        if (answering) queueRef?.onDeviceData(Buffer.concat([latin1('re:'), request]));
      },
    });
    queueRef = queue;
    const results = Array.from({ length: 2000 }, (_, i) => queue.submit(cmd(`c${i % 7}`, `${i}\n`)));
    assert.equal(queue.waiting, 1999);
    answering = true;
    queue.onDeviceData(latin1('re:0\n'));
    const values = (await Promise.all(results)).map((b) => b.toString());
    assert.deepEqual(values, Array.from({ length: 2000 }, (_, i) => `re:${i}\n`));
    assert.equal(queue.waiting, 0);
  });

  it('is safe to call from its callbacks: submit from unsolicited, removeConsumer and fail from write, close from unsolicited', async () => {
    const late: Outcome[] = [];
    const one = setup({
      unsolicited: () => {
        if (late.length === 0) late.push(track(one.queue.submit(cmd('y', 'from-callback\n'))));
      },
    });
    one.queue.onDeviceData(latin1('hello\n'));
    assert.deepEqual(one.writes, ['from-callback\n']);
    one.queue.onDeviceData(latin1('ok\n'));
    await settle();
    assert.equal(late[0]?.value, 'ok\n');

    let two: Setup | undefined;
    two = setup({ write: (r) => (r.toString() === 'leave\n' ? two?.queue.removeConsumer('x') : undefined) });
    const leave = track(two.queue.submit(cmd('x', 'leave\n')));
    const other = track(two.queue.submit(cmd('y', 'other\n')));
    two.queue.onDeviceData(latin1('r\n'));
    two.queue.onDeviceData(latin1('r2\n'));
    await settle();
    rejectedWith(leave, UnavailableError, 'consumer left');
    assert.equal(other.value, 'r2\n');

    const gone = new DeviceError('unplugged');
    let three: Setup | undefined;
    three = setup({ write: () => three?.queue.fail(gone) });
    const f1 = track(three.queue.submit(cmd('x', 'a\n')));
    const f2 = track(three.queue.submit(cmd('y', 'b\n')));
    await settle();
    assert.equal(f1.error, gone);
    assert.equal(f2.error, gone);

    let four: Setup | undefined;
    four = setup({ unsolicited: () => four?.queue.close() });
    const c1 = track(four.queue.submit(cmd('x', 'a\n')));
    const c2 = track(four.queue.submit(cmd('y', 'b\n')));
    four.queue.onDeviceData(latin1('ra\nextra'));
    await settle();
    assert.equal(c1.value, 'ra\n');
    rejectedWith(c2, UnavailableError, 'command queue closed');
    assert.equal(four.time.armed, 0);
  });

  it('a write that throws fails that command as a DeviceError and the queue goes on', async () => {
    const { queue } = setup({
      write: (r) => {
        if (r.toString() === 'bad\n') throw new Error('EIO');
      },
    });
    const bad = track(queue.submit(cmd('x', 'bad\n')));
    const good = track(queue.submit(cmd('y', 'good\n')));
    queue.onDeviceData(latin1('ok\n'));
    await settle();
    rejectedWith(bad, DeviceError, 'writing a command failed: EIO');
    assert.equal(good.value, 'ok\n');
  });

  it('close() rejects what is left with UnavailableError, cancels its timers, and refuses later submits', async () => {
    const { queue, time } = setup({ rule: { kind: 'idleGap', gapMs: 10 } });
    const a = track(queue.submit(cmd('x', 'a\n')));
    const b = track(queue.submit(cmd('y', 'b\n')));
    queue.onDeviceData(latin1('partial'));
    assert.equal(time.armed, 2);
    queue.close();
    const c = track(queue.submit(cmd('z', 'c\n')));
    await settle();
    for (const o of [a, b, c]) rejectedWith(o, UnavailableError, 'command queue closed');
    assert.equal(time.armed, 0);
  });

  it('counts dispatched, completed, timed-out and refused commands and the time they waited', async () => {
    const { queue, time } = setup({ perConsumer: 2 });
    const first = queue.submit(cmd('x', 'a\n', 0, 500));
    const second = queue.submit(cmd('x', 'b\n', 0, 500));
    await assert.rejects(queue.submit(cmd('x', 'c\n')), ResourceExhaustedError);
    time.advance(30);
    queue.onDeviceData(latin1('ra\n'));
    await first;
    time.advance(500);
    await assert.rejects(second, TimeoutError);
    assert.deepEqual(queue.stats, { dispatched: 2, completed: 1, timedOut: 1, refused: 1, waitMsTotal: 30 });
  });

  it('refuses bad options and bad commands with ValidationError', async () => {
    assert.throws(() => setup({ depth: 0 }), ValidationError);
    assert.throws(() => setup({ perConsumer: 1.5 }), ValidationError);
    assert.throws(() => setup({ maxResponseBytes: 0 }), ValidationError);
    const { queue } = setup();
    await assert.rejects(queue.submit(cmd('x', '')), ValidationError);
    await assert.rejects(queue.submit(cmd('x', 'a\n', 0, 0)), ValidationError);
    await assert.rejects(queue.submit(cmd('x', 'a\n', 0, Number.NaN)), ValidationError);
  });

  it('asks the scheduler again when it said when (wakeInMs), without a new command', async () => {
    const picks: number[] = [];
    const inner = new PriorityScheduler();
    const notBefore100: CommandScheduler = {
      get size(): number {
        return inner.size;
      },
      add: (item) => inner.add(item),
      take: (now) => {
        picks.push(now);
        return now >= 100 ? inner.take(now) : undefined;
      },
      completed: () => undefined,
      wakeInMs: (now) => 100 - now,
      removeConsumer: (consumer) => inner.removeConsumer(consumer),
      clear: () => inner.clear(),
    };
    const { queue, time, writes } = setup({ scheduler: notBefore100 });
    time.advance(20);
    const a = track(queue.submit(cmd('x', 'a\n')));
    assert.deepEqual(writes, []);
    time.advance(79);
    assert.deepEqual(writes, []);
    time.advance(1);
    assert.deepEqual(writes, ['a\n']);
    assert.deepEqual(picks, [20, 100]);
    queue.onDeviceData(latin1('r\n'));
    await settle();
    assert.equal(a.value, 'r\n');
  });
});
