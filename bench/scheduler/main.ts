/**
 * bench/scheduler: what choosing the next command costs with a deep queue. 100, 1,000 and 10,000
 * commands of mixed priorities wait in a CommandQueue (the device holds the first); then the device
 * answers each at once and the queue drains. The same run with the shipped PriorityScheduler (one
 * FIFO per priority) and with the linear scan it replaced (kept here only, as the baseline: every
 * pick scans the arrival-ordered array, every dispatch splices it). Alternating rounds, median.
 * Prints a table and writes bench/results/scheduler-<timestamp>.json. See docs/benchmarks.md.
 */
import { CommandQueue } from '../../agent/exchange/command-queue';
import { type Command, type CommandScheduler, PriorityScheduler, type Queued } from '../../agent/exchange/command-scheduler';
import { ValidationError } from '../../src/errors';
import { benchArgs, integerFlag } from '../common/bench-options';
import { machineInfo, runMain, writeResults } from '../common/bench-run';

const USAGE = [
  'usage: npm run bench:scheduler -- [flags]   (or node dist/bench/scheduler/main.js [flags])',
  '',
  '  --rounds N    alternating rounds per size (default 7)',
  '  --quick       smoke run: 2 rounds',
  '  --out FILE    JSON results (default bench/results/scheduler-<timestamp>.json)',
].join('\n');

const SIZES = [100, 1000, 10_000];
const CONSUMERS = 16;
const RESPONSE = Buffer.from('OK\n');

/** The scheduler before issue 18: a linear scan of the waiting commands in arrival order. */
class LinearScanScheduler implements CommandScheduler {
  private readonly waiting: Queued[] = [];

  get size(): number {
    return this.waiting.length;
  }

  add(item: Queued): void {
    this.waiting.push(item);
  }

  take(_now: number): Queued | undefined {
    let best = -1;
    let bestPriority = -Infinity;
    for (let i = 0; i < this.waiting.length; i++) {
      const priority = (this.waiting[i] as Queued).command.priority;
      if (best < 0 || priority > bestPriority) {
        best = i;
        bestPriority = priority;
      }
    }
    return best < 0 ? undefined : this.waiting.splice(best, 1)[0];
  }

  completed(): void {
    // Priorities alone decide.
  }

  wakeInMs(): undefined {
    return undefined;
  }

  removeConsumer(consumer: string): Queued[] {
    const leaving = this.waiting.filter((q) => q.command.consumer === consumer);
    this.waiting.splice(0, this.waiting.length, ...this.waiting.filter((q) => q.command.consumer !== consumer));
    return leaving;
  }

  clear(): Queued[] {
    return this.waiting.splice(0, this.waiting.length);
  }
}

/** The same commands every run: priorities 0–7 from a fixed-seed generator, consumers in turn. */
function commands(n: number): Command[] {
  let state = 12345;
  const out: Command[] = [];
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out.push({ consumer: `c${i % CONSUMERS}`, priority: state >>> 29, request: Buffer.from(`cmd ${i}\n`), timeoutMs: 60_000 });
  }
  return out;
}

/** µs from the first answer until the last of `list` is answered, and the order they went. */
async function drain(scheduler: CommandScheduler, list: readonly Command[]): Promise<{ us: number; order: string }> {
  let holding = true;
  const order: string[] = [];
  const queue: CommandQueue = new CommandQueue({
    depth: list.length + 1,
    perConsumer: list.length,
    rule: { kind: 'terminator', terminator: Buffer.from('\n') },
    maxResponseBytes: 64,
    scheduler,
    write: (request) => {
      order.push(request.toString());
      if (!holding) queue.onDeviceData(RESPONSE);
    },
    unsolicited: () => undefined,
  });
  const answered = list.map((c) => queue.submit(c));
  const started = performance.now();
  holding = false;
  queue.onDeviceData(RESPONSE);
  await Promise.all(answered);
  const us = (performance.now() - started) * 1000;
  queue.close();
  return { us, order: order.join('') };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

interface SizeResult {
  queued: number;
  /** Median µs to drain the whole queue. */
  linearScanUs: number;
  priorityFifosUs: number;
  linearScanUsPerDispatch: number;
  priorityFifosUsPerDispatch: number;
  speedup: number;
}

async function benchSize(n: number, rounds: number): Promise<SizeResult> {
  const list = commands(n);
  const linear: number[] = [];
  const fifos: number[] = [];
  // A warm-up of each, then alternating rounds, so that neither gets the JIT's or the GC's better moments.
  const reference = await drain(new LinearScanScheduler(), list);
  const check = await drain(new PriorityScheduler(), list);
  if (check.order !== reference.order) throw new ValidationError('PriorityScheduler', `served ${n} commands in another order than the linear scan`);
  for (let r = 0; r < rounds; r++) {
    linear.push((await drain(new LinearScanScheduler(), list)).us);
    fifos.push((await drain(new PriorityScheduler(), list)).us);
  }
  const l = median(linear);
  const f = median(fifos);
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return { queued: n, linearScanUs: Math.round(l), priorityFifosUs: Math.round(f), linearScanUsPerDispatch: r2(l / n), priorityFifosUsPerDispatch: r2(f / n), speedup: r2(l / f) };
}

async function main(argv: string[]): Promise<number> {
  const startedAt = new Date();
  const args = benchArgs('scheduler', argv, ['rounds'], startedAt);
  if (!args) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const rounds = integerFlag('rounds', args.values.rounds ?? (args.quick ? '2' : '7'), 1, 1000);
  const results: SizeResult[] = [];
  for (const n of SIZES) results.push(await benchSize(n, rounds));
  const machine = machineInfo();
  const text = [
    `Draining a CommandQueue of N waiting commands (priorities 0–7, ${CONSUMERS} consumers, a device that answers at once); median of ${rounds} rounds`,
    '  queued   linear scan (baseline)        per-priority FIFOs          speed-up',
    ...results.map(
      (r) =>
        `  ${String(r.queued).padStart(6)}   ${`${r.linearScanUs} µs (${r.linearScanUsPerDispatch} µs/cmd)`.padEnd(30)}${`${r.priorityFifosUs} µs (${r.priorityFifosUsPerDispatch} µs/cmd)`.padEnd(28)}× ${r.speedup}`,
    ),
    'Both served the commands in the same order (checked each size).',
    `machine: ${machine.cpus} × ${machine.cpuModel}, load ${machine.loadAverage.join(' ')}`,
  ].join('\n');
  writeResults(args.out, { benchmark: 'scheduler', startedAt: startedAt.toISOString(), machine, rounds, consumers: CONSUMERS, results }, text);
  return 0;
}

runMain('bench:scheduler', main);
