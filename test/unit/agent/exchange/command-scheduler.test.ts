import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { type Command, PriorityScheduler, type Queued } from '../../../../agent/exchange/command-scheduler';
import { TimeSliceScheduler } from '../../../../agent/exchange/time-slice-scheduler';
import { ValidationError } from '../../../../src/errors';

function command(consumer: string, priority = 0, label = ''): Command {
  return { consumer, priority, request: Buffer.from(label || consumer), timeoutMs: 1000 };
}

/**
 * Runs busy consumers against a scheduler in simulated time: each keeps `backlog` commands waiting,
 * each command holds the device for duration(consumer) ms. Returns who held the device, in order.
 */
function simulate(
  scheduler: TimeSliceScheduler,
  consumers: readonly string[],
  duration: (consumer: string) => number,
  untilMs: number,
  backlog = 3,
): string[] {
  const waiting: Command[] = [];
  for (let round = 0; round < backlog; round++) for (const c of consumers) waiting.push(command(c));
  const holders: string[] = [];
  let now = 0;
  while (now < untilMs) {
    const i = scheduler.pick(waiting, now);
    assert.ok(i >= 0 && i < waiting.length, `pick ${i} of ${waiting.length}`);
    const [picked] = waiting.splice(i, 1) as [Command];
    const took = duration(picked.consumer);
    scheduler.completed(picked, now, now + took);
    now += took;
    holders.push(picked.consumer);
    waiting.push(command(picked.consumer));
  }
  return holders;
}

function shares(scheduler: TimeSliceScheduler, consumers: readonly string[]): number[] {
  const times = consumers.map((c) => scheduler.deviceTime(c));
  const total = times.reduce((a, b) => a + b, 0);
  return times.map((t) => t / total);
}

/** A small deterministic generator, so that a failing run can be repeated. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Takes everything waiting, in the order the scheduler serves it. */
function drain(s: PriorityScheduler): string[] {
  const order: string[] = [];
  for (let q = s.take(0); q !== undefined; q = s.take(0)) order.push(q.command.request.toString());
  return order;
}

describe('exchange: priority scheduler', () => {
  const queued = (consumer: string, priority: number, label: string): Queued => ({ command: command(consumer, priority, label) });

  it('takes the highest priority, the first to arrive among equals, and nothing when nothing waits', () => {
    const s = new PriorityScheduler();
    assert.equal(s.take(0), undefined);
    for (const [c, p, l] of [['a', 1, 'a1'], ['b', 1, 'b1'], ['c', 1, 'c1']] as const) s.add(queued(c, p, l));
    assert.deepEqual(drain(s), ['a1', 'b1', 'c1']);
    for (const [c, p, l] of [['a', 1, 'a1'], ['b', 5, 'b5'], ['c', 5, 'c5'], ['d', -3, 'd-3']] as const) s.add(queued(c, p, l));
    assert.deepEqual(drain(s), ['b5', 'c5', 'a1', 'd-3']);
    s.add(queued('a', -2, 'a-2'));
    s.add(queued('b', -1, 'b-1'));
    assert.equal(s.take(0)?.command.request.toString(), 'b-1');
    assert.equal(s.size, 1);
    assert.equal(s.wakeInMs(0), undefined);
  });

  it('takes out a leaving consumer\'s commands and everything on clear, in arrival order', () => {
    const s = new PriorityScheduler();
    for (const [c, p, l] of [['a', 0, 'a0'], ['b', 9, 'b9'], ['a', 9, 'a9'], ['b', 0, 'b0'], ['a', 3, 'a3']] as const) s.add(queued(c, p, l));
    assert.deepEqual(s.removeConsumer('a').map((q) => q.command.request.toString()), ['a0', 'a9', 'a3']);
    assert.equal(s.size, 2);
    s.add(queued('c', 5, 'c5'));
    assert.deepEqual(s.clear().map((q) => q.command.request.toString()), ['b9', 'b0', 'c5']);
    assert.equal(s.size, 0);
    assert.equal(s.take(0), undefined);
  });

  it('keeps arrival order through a long-lived level (10,000 through one priority, never empty)', () => {
    const s = new PriorityScheduler();
    const served: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      s.add(queued('a', 1, String(i)));
      if (i % 2 === 1) served.push(Number(s.take(0)?.command.request.toString()));
    }
    for (let q = s.take(0); q !== undefined; q = s.take(0)) served.push(Number(q.command.request.toString()));
    assert.deepEqual(served, Array.from({ length: 10_000 }, (_, i) => i));
  });

  it('property: serves exactly the order of a linear scan (highest priority, then arrival) under any adds, takes and leaves', () => {
    type Op = { add: [string, number] } | { take: true } | { leave: string };
    const op = fc.oneof(
      fc.record({ add: fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: -3, max: 3 })) }),
      fc.record({ take: fc.constant(true as const) }),
      fc.record({ leave: fc.constantFrom('a', 'b', 'c') }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), (ops: Op[]) => {
        const s = new PriorityScheduler();
        // The model: every waiting command in arrival order; the one served is the first of the highest priority.
        let model: Command[] = [];
        let n = 0;
        for (const o of ops) {
          if ('add' in o) {
            const c = command(o.add[0], o.add[1], String(n++));
            model.push(c);
            s.add({ command: c });
          } else if ('take' in o) {
            const top = model.reduce<Command | undefined>((best, c) => (best === undefined || c.priority > best.priority ? c : best), undefined);
            assert.equal(s.take(0)?.command, top);
            model = model.filter((c) => c !== top);
          } else {
            const leaving = model.filter((c) => c.consumer === o.leave);
            assert.deepEqual(s.removeConsumer(o.leave).map((q) => q.command), leaving);
            model = model.filter((c) => c.consumer !== o.leave);
          }
          assert.equal(s.size, model.length);
        }
        assert.deepEqual(s.clear().map((q) => q.command), model);
      }),
      { numRuns: 200 },
    );
  });
});

describe('exchange: time-slice scheduler', () => {
  const weights: Record<string, number> = { a: 1, b: 2, c: 1 };

  it('weights 1:2:1 with busy consumers over 10 s: device-time shares within 5% of 25/50/25 (property over command lengths)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 10, max: 100 }), fc.integer({ min: 1, max: 3 }), (seed, sliceMs, longest) => {
        const random = lcg(seed);
        const s = new TimeSliceScheduler({ sliceMs, weight: (c) => weights[c] ?? 1 });
        simulate(s, ['a', 'b', 'c'], () => 1 + random() * longest * sliceMs, 10_000);
        const [a, b, c] = shares(s, ['a', 'b', 'c']) as [number, number, number];
        const shown = `shares ${[a, b, c].map((x) => (x * 100).toFixed(1))}`;
        assert.ok(Math.abs(a - 0.25) < 0.05 && Math.abs(b - 0.5) < 0.05 && Math.abs(c - 0.25) < 0.05, shown);
      }),
      { numRuns: 50 },
    );
  });

  it('a command that overruns its turn is paid back by later turns', () => {
    // a's commands take 5 turns' worth; without the deficit carried over a would get 50/(50+10) of the device.
    const s = new TimeSliceScheduler({ sliceMs: 10, weight: () => 1 });
    simulate(s, ['a', 'b'], (c) => (c === 'a' ? 50 : 5), 10_000);
    const [a, b] = shares(s, ['a', 'b']) as [number, number];
    assert.ok(Math.abs(a - 0.5) < 0.02 && Math.abs(b - 0.5) < 0.02, `shares ${a} ${b}`);
  });

  it('turns go round in order of first arrival; a turn lasts weight × slice of device time', () => {
    const s = new TimeSliceScheduler({ sliceMs: 10, weight: (c) => (c === 'a' ? 3 : 1) });
    const waiting = [command('c'), command('a'), command('b'), command('c'), command('a'), command('b')];
    const order: string[] = [];
    let now = 0;
    for (let n = 0; n < 10; n++) {
      const i = s.pick(waiting, now);
      const [picked] = waiting.splice(i, 1) as [Command];
      s.completed(picked, now, now + 10);
      now += 10;
      order.push(picked.consumer);
      waiting.push(command(picked.consumer));
    }
    assert.deepEqual(order, ['c', 'a', 'a', 'a', 'b', 'c', 'a', 'a', 'a', 'b']);
  });

  it('the holder keeps the device between its commands while its turn lasts, even if others waited longer', () => {
    const s = new TimeSliceScheduler({ sliceMs: 100, weight: () => 1 });
    const waiting = [command('a', 0, 'a1'), command('b', 0, 'b1'), command('a', 0, 'a2')];
    assert.equal(s.pick(waiting, 0), 0);
    s.completed(waiting[0] as Command, 0, 30);
    waiting.shift();
    assert.equal(s.pick(waiting, 30), 1, 'a2 before b1: a has 70 ms of its turn left');
    s.completed(waiting[1] as Command, 30, 110);
    waiting.splice(1, 1);
    waiting.push(command('a', 0, 'a3'));
    assert.equal(s.pick(waiting, 110), 0, "a's turn is used up: b1");
  });

  it('an idle holder passes the turn on at once, and an unused turn is not saved up', () => {
    const s = new TimeSliceScheduler({ sliceMs: 100, weight: () => 1 });
    const a1 = command('a');
    assert.equal(s.pick([a1, command('b')], 0), 0);
    s.completed(a1, 0, 10);
    // a has 90 ms left but nothing waiting: b gets the device now.
    assert.equal(s.pick([command('b')], 10), 0);
    s.completed(command('b'), 10, 20);
    // b has 90 ms of its turn left and a command waiting: b keeps the device although a is back.
    assert.equal(s.pick([command('a'), command('b')], 20), 1);
    s.completed(command('b'), 20, 110);
    assert.equal(s.pick([command('a'), command('b')], 110), 0, 'a gets a fresh turn, not 100 + 90 ms');
    s.completed(command('a'), 110, 210);
    assert.equal(s.pick([command('a'), command('b')], 210), 1, 'after exactly one slice a hands over');
  });

  it('within a consumer the highest priority goes first, then arrival order', () => {
    const s = new TimeSliceScheduler({ sliceMs: 100, weight: () => 1 });
    assert.equal(s.pick([command('a', 0, 'x'), command('a', 7, 'y'), command('a', 7, 'z')], 0), 1);
  });

  it('a consumer deep in debt waits while others want the device, and is served at once when alone (work-conserving)', () => {
    const s = new TimeSliceScheduler({ sliceMs: 1, weight: () => 1 });
    const a = command('a');
    assert.equal(s.pick([a, command('b')], 0), 0);
    s.completed(a, 0, 100_000);
    const holders = simulate(s, ['a', 'b'], () => 1, 1000);
    assert.ok(holders.length >= 1000 && holders.every((h) => h === 'b'), 'b has the device while a pays back');
    assert.equal(s.pick([command('a')], 1000), 0, 'nobody else waits: a goes on');
    assert.equal(s.deviceTime('a'), 100_000);
  });

  it('a consumer that leaves is forgotten: the turn moves on, its late completion counts for nobody', () => {
    const s = new TimeSliceScheduler({ sliceMs: 100, weight: () => 1 });
    const a = command('a');
    assert.equal(s.pick([a, command('b'), command('c')], 0), 0);
    s.removeConsumer('a');
    s.completed(a, 0, 50);
    assert.equal(s.deviceTime('a'), 0);
    assert.equal(s.pick([command('b'), command('c')], 50), 0);
    s.removeConsumer('nobody');
    s.removeConsumer('b');
    assert.equal(s.pick([command('c'), command('a')], 60), 0, 'c is next; a comes back as a new arrival after c');
  });

  it('counts a weight of 0, negative or NaN as 1, and refuses a slice that is not positive', () => {
    const s = new TimeSliceScheduler({ sliceMs: 20, weight: (c) => ({ a: 0, b: -1, c: Number.NaN })[c] ?? 1 });
    simulate(s, ['a', 'b', 'c', 'd'], () => 7, 8000);
    for (const share of shares(s, ['a', 'b', 'c', 'd'])) assert.ok(Math.abs(share - 0.25) < 0.02, String(share));
    assert.throws(() => new TimeSliceScheduler({ sliceMs: 0, weight: () => 1 }), ValidationError);
  });
});
