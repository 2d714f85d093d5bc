import { CommandQueue } from '../../agent/exchange/command-queue';
import { type Command, PriorityScheduler } from '../../agent/exchange/command-scheduler';
import { type Percentiles, percentiles, round } from './stats';

const REQUEST = Buffer.from('AT+ECHO=bench\r', 'latin1');
const RESPONSE = Buffer.from('\r\n+ECHO: bench\r\nOK\r\n', 'latin1');

/** A device that answers inside write, synchronously: whatever time a command takes is its caller's. */
class SyncDevice {
  write(_request: Buffer, answer: (response: Buffer) => void): void {
    answer(RESPONSE);
  }
}

export interface QueueOverhead {
  commands: number;
  warmup: number;
  /** The fake device called directly, awaited through a promise. */
  directUs: Percentiles;
  /** The same device behind CommandQueue + PriorityScheduler (terminator framing, real timers). */
  queuedUs: Percentiles;
  /** queued − direct. */
  addedUs: { p50: number; p99: number };
}

async function timeEach(count: number, run: () => Promise<Buffer>, into: number[] | undefined): Promise<void> {
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await run();
    if (into) into.push((performance.now() - started) * 1000);
  }
}

/**
 * What the command queue itself adds to a command, in process: the same synchronous fake device
 * called directly and behind the queue, awaited one command at a time, in alternating rounds so
 * that neither side gets the JIT's or the GC's better moments.
 */
export async function measureQueueOverhead(commands: number, warmup: number, rounds = 4): Promise<QueueOverhead> {
  const device = new SyncDevice();
  const queue: CommandQueue = new CommandQueue({
    depth: 256,
    perConsumer: 4,
    rule: { kind: 'terminator', terminator: Buffer.from('OK\r\n', 'latin1') },
    maxResponseBytes: 4096,
    scheduler: new PriorityScheduler(),
    write: (request) => device.write(request, (response) => queue.onDeviceData(response)),
    unsolicited: () => undefined,
  });
  const command: Command = { consumer: 'bench', priority: 0, request: REQUEST, timeoutMs: 5000 };
  const direct = (): Promise<Buffer> => new Promise((resolve) => device.write(REQUEST, resolve));
  const queued = (): Promise<Buffer> => queue.submit(command);
  try {
    await timeEach(warmup, direct, undefined);
    await timeEach(warmup, queued, undefined);
    const directUs: number[] = [];
    const queuedUs: number[] = [];
    const perRound = Math.ceil(commands / rounds);
    for (let r = 0; r < rounds; r++) {
      await timeEach(perRound, direct, directUs);
      await timeEach(perRound, queued, queuedUs);
    }
    const d = percentiles(directUs, 2);
    const q = percentiles(queuedUs, 2);
    return { commands: perRound * rounds, warmup, directUs: d, queuedUs: q, addedUs: { p50: round(q.p50 - d.p50, 2), p99: round(q.p99 - d.p99, 2) } };
  } finally {
    queue.close();
  }
}
