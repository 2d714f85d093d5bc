import type { Duplex } from 'node:stream';
import { sleep } from '../data-path/children';
import { AtConsumer } from './at-consumer';
import { jainIndex, type Percentiles, percentiles, round } from './stats';

/** Untimed commands first: connections settle, the JIT warms up. */
const WARMUP_MS = 500;

export interface ConsumerRunResult {
  consumers: number;
  seconds: number;
  commandsPerSecond: number;
  roundTripUs: Percentiles;
  /** Commands/s of each consumer. */
  perConsumerPerSecond: { min: number; max: number; mean: number; all: number[] };
  jain: number;
}

/**
 * Every stream is one consumer keeping one command outstanding; after a warm-up, counts and times
 * answers for `seconds`, then lets the outstanding commands finish and checks every response.
 */
export async function runConsumers(streams: Duplex[], seconds: number): Promise<ConsumerRunResult> {
  const latencies: number[] = [];
  const consumers = streams.map((s, i) => new AtConsumer(s, `c${i}`, latencies));
  await sleep(WARMUP_MS);
  for (const c of consumers) c.recording = true;
  const started = performance.now();
  await sleep(seconds * 1000);
  for (const c of consumers) c.recording = false;
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(consumers.map((c) => c.stop()));
  for (const c of consumers) c.check();
  const rates = consumers.map((c) => c.answered / elapsed);
  const total = rates.reduce((a, b) => a + b, 0);
  return {
    consumers: streams.length,
    seconds: round(elapsed, 3),
    commandsPerSecond: round(total),
    roundTripUs: percentiles(latencies),
    perConsumerPerSecond: {
      min: round(Math.min(...rates)),
      max: round(Math.max(...rates)),
      mean: round(total / rates.length),
      all: rates.map((r) => round(r)),
    },
    jain: round(jainIndex(rates), 4),
  };
}
