import { performance } from 'node:perf_hooks';
import { type Context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { DeviceError, type DeviceMeshError, errorMessage, ResourceExhaustedError, TimeoutError } from '../../src/errors';
import type { Logger } from '../../src/log';
import { DEFAULT_POLICY, perConsumerQueueFor } from '../../src/model/policy-defaults';
import type { Policy, SerialConfig } from '../../src/proto/types';
import type { Histogram, Stats } from '../../src/telemetry/stats';
import { meshTracer } from '../../src/telemetry/trace-context';
import type { BindingLimits } from '../limits/binding-limits';
import { LimitGate } from '../limits/limit-gate';
import type { RateMeter } from '../limits/rate-meter';
import type { CommandAccess, CommandCodec, CommandSplitter } from './command-codec';
import { CommandQueue, type QueueTimers, REAL_TIMERS } from './command-queue';
import { type CommandScheduler, PriorityScheduler } from './command-scheduler';
import { commandCodec, readyPattern } from './framing-from-policy';
import { TimeSliceScheduler } from './time-slice-scheduler';
import type { TokenBucket } from '../../src/limits/token-bucket';

/** The largest command or response the exchange takes; beyond it the sender gets an error. */
const MAX_COMMAND_BYTES = 64 * 1024;

/** What the exchange needs of a session on the device. */
export interface ExchangeConsumer {
  readonly key: string;
  /** Read-only and Modbus units, for a codec that checks them per request. */
  readonly access: CommandAccess;
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
  /** The device's line settings (a Modbus RTU bus's timing). */
  serial: SerialConfig | null;
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
 * (by the policy's codec: at its request terminator, or Modbus MBAP frames), the commands of every consumer go through one bounded
 * queue, one at a time, and each response (framed by the policy's rule) goes back only to the
 * consumer that sent the command. Output no command asked for goes to the policy's owner, or to
 * every consumer. A consumer is held back (its write does not complete) while it has as many
 * commands outstanding as the per-consumer cap; a full queue refuses with RESOURCE_EXHAUSTED.
 */
export class DeviceExchange {
  private readonly queue: CommandQueue;
  private readonly scheduler: CommandScheduler;
  private readonly consumers = new Map<string, ConsumerState>();
  private readonly codec: CommandCodec;
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
    const now = options.now ?? ((): number => performance.now());
    const timers = options.timers ?? REAL_TIMERS;
    this.codec = commandCodec({
      device: options.device,
      policy,
      serial: options.serial,
      maxCommandBytes: MAX_COMMAND_BYTES,
      write: options.write,
      stats: options.stats,
      now,
      timers,
    });
    this.queue = new CommandQueue({
      depth,
      perConsumer: this.perConsumer,
      rule: this.codec.rule,
      maxResponseBytes: MAX_COMMAND_BYTES,
      scheduler: this.scheduler,
      write: (request) => this.codec.write(request),
      now,
      unsolicited: (chunk) => this.unsolicited(chunk),
      ready: readyPattern(policy.readyPattern),
      timers,
    });
  }

  add(consumer: ExchangeConsumer): void {
    const gate = new LimitGate(consumer.limits, this.options.deviceBucket, this.options.deviceMeter, this.options.timers);
    this.consumers.set(consumer.key, { consumer, gate, splitter: this.codec.splitter(), outstanding: 0, wake: undefined });
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

  /** True when the codec checks read-only per request, so a read-only consumer's bytes come here. */
  get checksAccess(): boolean {
    return this.codec.checksAccess;
  }

  onDeviceData(chunk: Buffer): void {
    this.codec.heard();
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
      if (!(await state.gate.admit(request.length))) {
        // A codec that answers failures in its protocol's words answers the dropped command too.
        const answer = this.codec.failed(request, new ResourceExhaustedError('over the rate limit: dropped'), 0);
        if (answer !== undefined) this.reply(state, answer);
        continue;
      }
      const prepared = this.codec.prepare(request, state.consumer.access);
      if (prepared.answer !== undefined) {
        this.options.stats.add('commands', 1, { device: this.options.device, outcome: 'refused_by_codec' });
        this.reply(state, prepared.answer);
        continue;
      }
      while (state.outstanding >= this.perConsumer) await new Promise<void>((resolve) => (state.wake = resolve));
      state.outstanding++;
      limits.commandMeter.record(1);
      limits.commandsSent.add(1);
      limits.meter.record(request.length);
      this.options.deviceMeter.record(request.length);
      const traced = this.startCommandSpan(state.consumer, request.length);
      const submittedAt = performance.now();
      const answered = this.queue.submit({
        consumer: state.consumer.key,
        priority: state.consumer.priority,
        request: prepared.write,
        timeoutMs: this.timeoutMs,
        dispatched: traced.dispatched,
        ...(prepared.answerlessMs === undefined ? {} : { answerlessMs: prepared.answerlessMs }),
      });
      this.options.stats.set('command_queue_depth', this.queue.depth, this.deviceLabels);
      answered
        .then(
          (response) => {
            limits.meter.record(response.length);
            this.options.stats.add('commands', 1, { device: this.options.device, outcome: 'answered' });
            traced.end(undefined, response.length);
            this.reply(state, this.codec.answered(request, response, (performance.now() - submittedAt) / 1000));
          },
          (err: unknown) => {
            traced.end(err, 0);
            const answer = this.codec.failed(request, err as DeviceMeshError, (performance.now() - submittedAt) / 1000);
            if (answer === undefined) this.commandFailed(state, err);
            else {
              this.countFailure(err);
              this.reply(state, answer);
            }
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

  /** Bytes for a consumer that is still here; nothing for an empty answer (a Modbus broadcast's). */
  private reply(state: ConsumerState, bytes: Buffer): void {
    if (bytes.length > 0 && this.consumers.get(state.consumer.key) === state) state.consumer.receive(bytes);
  }

  private commandFailed(state: ConsumerState, err: unknown): void {
    this.countFailure(err);
    if (err instanceof ResourceExhaustedError) {
      if (this.consumers.get(state.consumer.key) === state) state.consumer.refuse(err);
      return;
    }
    this.options.log.debug({ device: this.options.device, error: errorMessage(err) }, 'command did not complete');
  }

  private countFailure(err: unknown): void {
    const outcome = err instanceof ResourceExhaustedError ? 'refused' : err instanceof TimeoutError ? 'timeout' : 'failed';
    this.options.stats.add('commands', 1, { device: this.options.device, outcome });
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
    if (this.codec.dropsUnsolicited(chunk)) return;
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
  /** Its binding's limits and the device's capacity, charged per command. */
  gate: LimitGate;
  splitter: CommandSplitter;
  /** Commands queued or running. */
  outstanding: number;
  /** Resolves a write held back at the cap. */
  wake: (() => void) | undefined;
}
