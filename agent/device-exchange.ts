import { performance } from 'node:perf_hooks';
import { type Context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { DeviceError, type DeviceMeshError, errorMessage, ResourceExhaustedError, TimeoutError } from '../src/errors';
import type { Logger } from '../src/log';
import { DEFAULT_POLICY, perConsumerQueueFor } from '../src/model/policy-defaults';
import type { Policy } from '../src/proto/types';
import type { Histogram, Stats } from '../src/telemetry/stats';
import { meshTracer } from '../src/telemetry/trace-context';
import type { BindingLimits } from './binding-limits';
import { CommandQueue, type QueueTimers, REAL_TIMERS } from './exchange/command-queue';
import { type CommandScheduler, PriorityScheduler } from './exchange/command-scheduler';
import { readyPattern, requestTerminator, responseRule } from './exchange/framing-from-policy';
import type { RateMeter } from './exchange/rate-meter';
import { RequestSplitter } from './exchange/request-splitter';
import { TimeSliceScheduler } from './exchange/time-slice-scheduler';
import type { TokenBucket } from './exchange/token-bucket';

/** The largest command or response the exchange takes; beyond it the sender gets an error. */
const MAX_COMMAND_BYTES = 64 * 1024;

/** What the exchange needs of a session on the device. */
export interface ExchangeConsumer {
  readonly key: string;
  readonly workloadId: string;
  readonly priority: number;
  readonly weight: number;
  readonly limits: BindingLimits;
  /** The trace its session continues (the sidecar's span), the parent of its command spans. */
  readonly traceContext: Context;
  /** Labels of its spans: binding, mapping, workload. */
  readonly spanAttributes: Readonly<Record<string, string>>;
  /** Hands device output to the session (a response, or unsolicited data). */
  receive(chunk: Buffer): void;
  /** The exchange refused one of its commands (a full queue): the session ends with the error. */
  refuse(err: DeviceMeshError): void;
}

export interface DeviceExchangeOptions {
  device: string;
  /** The policy of the mapping that opened the device: sharing mode, framing, queue sizes. */
  policy: Policy;
  /** Writes a request to the device. */
  write: (request: Buffer) => void;
  /** The device's capacity (policy.deviceBytesPerSecond): every request's bytes are charged to it. */
  deviceBucket: TokenBucket;
  /** The device's measured load: every request's bytes are recorded in it. */
  deviceMeter: RateMeter;
  stats: Stats;
  log: Logger;
  /** The clock of the queue (ms); default performance.now(). Injected in tests with `timers`. */
  now?: () => number;
  /** The queue's timers and the waits for tokens; default Node's timers. */
  timers?: QueueTimers;
}

/**
 * Shared and time-slice sharing of one device: each consumer's byte stream is cut into commands
 * (at the policy's request terminator), the commands of every consumer go through one bounded
 * queue, one at a time, and each response (framed by the policy's rule) goes back only to the
 * consumer that sent the command. Output no command asked for goes to the policy's owner, or to
 * every consumer. A consumer is held back (its write does not complete) while it has as many
 * commands outstanding as the per-consumer cap; a full queue refuses with RESOURCE_EXHAUSTED.
 */
export class DeviceExchange {
  private readonly queue: CommandQueue;
  private readonly scheduler: CommandScheduler;
  private readonly consumers = new Map<string, ConsumerState>();
  private readonly terminator: Buffer;
  private readonly timeoutMs: number;
  private readonly perConsumer: number;
  private readonly owner: string;
  private readonly latency: Histogram;
  private readonly queueWait: Histogram;
  private readonly deviceLabels: Readonly<Record<string, string>>;

  constructor(private readonly options: DeviceExchangeOptions) {
    const policy = options.policy;
    this.deviceLabels = { device: options.device };
    this.latency = options.stats.histogram('command_seconds', this.deviceLabels);
    this.queueWait = options.stats.histogram('command_queue_wait_seconds', this.deviceLabels);
    const depth = policy.queueDepth || DEFAULT_POLICY.queueDepth;
    this.terminator = requestTerminator(policy.requestTerminator);
    this.timeoutMs = policy.commandTimeoutMs || DEFAULT_POLICY.commandTimeoutMs;
    this.perConsumer = policy.perConsumerQueue || perConsumerQueueFor(depth);
    this.owner = policy.unsolicitedOwner;
    this.scheduler =
      policy.sharing === 'SHARING_MODE_TIME_SLICE'
        ? new TimeSliceScheduler({
            sliceMs: policy.timeSliceMs || DEFAULT_POLICY.timeSliceMs,
            weight: (key) => this.consumers.get(key)?.consumer.weight ?? DEFAULT_POLICY.weight,
          })
        : new PriorityScheduler();
    this.queue = new CommandQueue({
      depth,
      perConsumer: this.perConsumer,
      rule: responseRule(policy.response),
      maxResponseBytes: MAX_COMMAND_BYTES,
      scheduler: this.scheduler,
      write: options.write,
      unsolicited: (chunk) => this.unsolicited(chunk),
      ready: readyPattern(policy.readyPattern),
      now: options.now,
      timers: options.timers,
    });
  }

  add(consumer: ExchangeConsumer): void {
    this.consumers.set(consumer.key, { consumer, splitter: new RequestSplitter(this.terminator, MAX_COMMAND_BYTES), outstanding: 0, wake: undefined });
  }

  remove(key: string): void {
    if (!this.consumers.delete(key)) return;
    this.queue.removeConsumer(key);
  }

  /**
   * A consumer's bytes: every complete command is submitted in order; the callback runs once they
   * are all queued and the consumer is below its cap again, or with the error that refused one.
   */
  write(key: string, chunk: Buffer, callback: (err?: Error | null) => void): void {
    const state = this.consumers.get(key);
    if (!state) {
      callback(new DeviceError(`consumer ${key} is not on device ${this.options.device}`));
      return;
    }
    let commands: Buffer[];
    try {
      commands = state.splitter.push(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.submitAll(state, commands).then(() => callback(), (err: unknown) => callback(err as Error));
  }

  onDeviceData(chunk: Buffer): void {
    this.queue.onDeviceData(chunk);
  }

  /** The device is gone: every waiting and running command fails with `err`. */
  fail(err: DeviceMeshError): void {
    this.queue.fail(err);
  }

  close(): void {
    this.queue.close();
  }

  private async submitAll(state: ConsumerState, commands: Buffer[]): Promise<void> {
    for (const request of commands) {
      const limits = state.consumer.limits;
      if (!(await this.admit(state, request.length))) continue;
      while (state.outstanding >= this.perConsumer) await new Promise<void>((resolve) => (state.wake = resolve));
      state.outstanding++;
      limits.commandMeter.record(1);
      limits.commandsSent.add(1);
      limits.meter.record(request.length);
      this.options.deviceMeter.record(request.length);
      const traced = this.startCommandSpan(state.consumer, request.length);
      const answered = this.queue.submit({
        consumer: state.consumer.key,
        priority: state.consumer.priority,
        request,
        timeoutMs: this.timeoutMs,
        dispatched: traced.dispatched,
      });
      this.options.stats.set('command_queue_depth', this.queue.depth, this.deviceLabels);
      answered
        .then(
          (response) => {
            limits.meter.record(response.length);
            this.options.stats.add('commands', 1, { device: this.options.device, outcome: 'answered' });
            traced.end(undefined, response.length);
            if (this.consumers.get(state.consumer.key) === state) state.consumer.receive(response);
          },
          (err: unknown) => {
            traced.end(err, 0);
            this.commandFailed(state, err);
          },
        )
        .finally(() => {
          this.options.stats.set('command_queue_depth', this.queue.depth, this.deviceLabels);
          state.outstanding--;
          const wake = state.wake;
          state.wake = undefined;
          wake?.();
        });
    }
  }

  /**
   * Charges one command to the binding's command and byte buckets and to the device's capacity:
   * slow mode waits until every bucket has paid for every byte (in pieces of at most a burst, so a
   * command larger than a burst passes too); drop mode takes it only if all of it can go now
   * (a command larger than a byte burst once that bucket is full), else drops and counts it.
   */
  private async admit(state: ConsumerState, bytes: number): Promise<boolean> {
    const limits = state.consumer.limits;
    const device = this.options.deviceBucket;
    if (!limits.limited && device.ratePerSecond === 0) return true;
    if (limits.drop) {
      const need = Math.min(bytes, limits.bytes.burst || bytes);
      const deviceNeed = Math.min(bytes, device.burst || bytes);
      if (limits.commands.available() >= 1 && limits.bytes.available() >= need && device.available() >= deviceNeed) {
        limits.commands.take(1);
        limits.bytes.take(need);
        device.take(deviceNeed);
        return true;
      }
      limits.droppedCommands.add(1);
      limits.droppedBytes.add(bytes);
      limits.markThrottled();
      return false;
    }
    let piece = bytes;
    if (limits.bytes.ratePerSecond > 0) piece = Math.min(piece, limits.bytes.burst);
    if (device.ratePerSecond > 0) piece = Math.min(piece, device.burst);
    let command = 1;
    for (let left = bytes; left > 0 || command > 0; ) {
      const n = Math.min(piece, left);
      const delay = Math.max(limits.commands.delayFor(command), limits.bytes.delayFor(n), device.delayFor(n));
      if (delay > 0) {
        limits.markThrottled();
        await this.sleep(delay);
        continue;
      }
      limits.commands.take(command);
      limits.bytes.take(n);
      device.take(n);
      command = 0;
      left -= n;
    }
    return true;
  }

  private sleep(ms: number): Promise<void> {
    const timers = this.options.timers ?? REAL_TIMERS;
    return new Promise((resolve) => timers.setTimeout(resolve, ms));
  }

  private commandFailed(state: ConsumerState, err: unknown): void {
    if (err instanceof ResourceExhaustedError) {
      this.options.stats.add('commands', 1, { device: this.options.device, outcome: 'refused' });
      if (this.consumers.get(state.consumer.key) === state) state.consumer.refuse(err);
      return;
    }
    const outcome = err instanceof TimeoutError ? 'timeout' : 'failed';
    this.options.stats.add('commands', 1, { device: this.options.device, outcome });
    this.options.log.debug({ device: this.options.device, error: errorMessage(err) }, 'command did not complete');
  }

  /**
   * One command's latency, queue wait and spans: `device command` (child of the consumer's
   * session trace) with `queue wait` and `device` children, so a trace shows where the time went.
   */
  private startCommandSpan(consumer: ExchangeConsumer, bytes: number): TracedCommand {
    const submittedAt = performance.now();
    const tracer = meshTracer();
    const attributes = { ...consumer.spanAttributes, 'devicemesh.device': this.options.device, 'devicemesh.request_bytes': bytes };
    const span = tracer.startSpan('device command', { attributes }, consumer.traceContext);
    const recording = span.isRecording();
    const inCommand = recording ? trace.setSpan(consumer.traceContext, span) : consumer.traceContext;
    const startWall = Date.now();
    let device: Span | undefined;
    return {
      dispatched: (waitedMs) => {
        this.queueWait.observe(waitedMs / 1000);
        if (!recording) return;
        tracer.startSpan('queue wait', { startTime: startWall }, inCommand).end(startWall + waitedMs);
        device = tracer.startSpan('device', { startTime: startWall + waitedMs }, inCommand);
      },
      end: (err, responseBytes) => {
        this.latency.observe((performance.now() - submittedAt) / 1000);
        if (!recording) return;
        device?.end();
        if (err === undefined) span.setAttribute('devicemesh.response_bytes', responseBytes);
        else span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
        span.end();
      },
    };
  }

  private unsolicited(chunk: Buffer): void {
    for (const { consumer } of this.consumers.values()) {
      if (!this.owner || consumer.workloadId === this.owner) consumer.receive(chunk);
    }
  }
}

interface TracedCommand {
  dispatched(waitedMs: number): void;
  end(err: unknown, responseBytes: number): void;
}

interface ConsumerState {
  consumer: ExchangeConsumer;
  splitter: RequestSplitter;
  /** Commands queued or running. */
  outstanding: number;
  /** Resolves a write held back at the cap. */
  wake: (() => void) | undefined;
}
