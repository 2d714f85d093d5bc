import { DeviceError, DeviceMeshError, errorMessage, ResourceExhaustedError, TimeoutError, UnavailableError, ValidationError } from '../../src/errors';
import type { Command, CommandScheduler, Queued } from './command-scheduler';
import { createResponseFramer, type ResponseFramer, type ResponseRule } from './response-framer';

/** Timers as the queue uses them; injected in tests to drive time. */
export interface QueueTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Node's timers, as QueueTimers. */
export const REAL_TIMERS: QueueTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Node's longest timer; a command timeout above it never fires. */
const MAX_TIMER_MS = 2_147_483_647;

/** Device output kept for the ready pattern: the end of it, where a prompt is. */
const READY_WINDOW = 4096;

export interface CommandQueueOptions {
  /** Commands waiting + in flight, all consumers. */
  depth: number;
  /** Waiting + in flight of one consumer. */
  perConsumer: number;
  rule: ResponseRule;
  maxResponseBytes: number;
  scheduler: CommandScheduler;
  /** Writes a dispatched request to the device. */
  write: (request: Buffer) => void;
  /** Device output that belongs to no command (none in flight, or after a handshake). */
  unsolicited: (chunk: Buffer) => void;
  /** Handshake: before each dispatch, wait until device output since the last response matches this (a prompt). */
  ready?: RegExp;
  /** ms; default performance.now(). */
  now?: () => number;
  /** Default: Node's timers. */
  timers?: QueueTimers;
}

export interface CommandQueueStats {
  dispatched: number;
  completed: number;
  timedOut: number;
  refused: number;
  /** Sum of (dispatch - submit) ms over dispatched commands. */
  waitMsTotal: number;
}

interface Entry {
  readonly command: Command;
  readonly resolve: (response: Buffer) => void;
  readonly reject: (err: DeviceMeshError) => void;
  readonly submittedAt: number;
  dispatchedAt: number;
  /** The request went to the device (false while the handshake waits for the ready pattern). */
  written: boolean;
  /** Its consumer left: the response is still framed, to keep in step with the device, but goes to no one. */
  orphaned: boolean;
  timer: unknown;
}

/**
 * One device's command exchange: commands of several consumers wait here, the scheduler picks one
 * at a time, its request goes to the device and the device's output is framed into its response
 * by the rule; one command is in flight at a time, so responses never interleave and each goes
 * only to its sender. A command ends by its response, its timeout, the device going away or the
 * queue closing; every submit settles, and a refusal is an error, never a silent drop.
 *
 * Output that is not a response (while nothing is in flight, while a handshake waits, the rest of a
 * chunk after a response) goes to `unsolicited`. A timed-out or oversized command's late bytes, too,
 * go there until the next dispatch; after that it would be taken for the next command's response,
 * which is what the ready pattern is for: with one, the next request waits for the prompt that
 * follows the late answer. The handshake consumes a prompt per request; output is matched from the
 * last request on, the responses themselves excluded, and the device counts as ready at first (and
 * after reset()), since a prompt shown before the queue existed cannot be seen again.
 *
 * A command's timeout runs from its dispatch (the handshake included); one above 2^31 - 1 ms
 * (Infinity, say) never fires.
 *
 * Pure but for the callbacks and timers: one timer per in-flight command (its timeout) and one for
 * the idle-gap quiet time or the scheduler's wake-up, never one per chunk. Callbacks may call back
 * into the queue (a device answering inside write, a submit from unsolicited).
 */
export class CommandQueue {
  private readonly options: CommandQueueOptions;
  private readonly framer: ResponseFramer;
  private readonly now: () => number;
  private readonly timers: QueueTimers;
  private readonly counts = new Map<string, number>();
  /** Holds the waiting entries; they come back as the Entry objects the queue added (see waitingEntry). */
  private readonly scheduler: CommandScheduler<Queued>;
  private flight: Entry | undefined;
  /** The idle-gap timer while a command is in flight, the scheduler's wake-up while none is. */
  private wakeTimer: unknown;
  private lastDataAt = 0;
  private readySeen = true;
  private readyText = '';
  private failure: DeviceMeshError | undefined;
  private closed = false;
  private pumping = false;
  private readonly counters: CommandQueueStats = { dispatched: 0, completed: 0, timedOut: 0, refused: 0, waitMsTotal: 0 };

  constructor(options: CommandQueueOptions) {
    for (const field of ['depth', 'perConsumer'] as const) {
      const value = options[field];
      if (!Number.isInteger(value) || value < 1) throw new ValidationError(field, `${value} is not a positive integer`);
    }
    this.options = options;
    this.scheduler = options.scheduler;
    this.framer = createResponseFramer(options.rule, options.maxResponseBytes);
    this.now = options.now ?? ((): number => performance.now());
    this.timers = options.timers ?? REAL_TIMERS;
  }

  /** Commands waiting and in flight. */
  get depth(): number {
    return this.scheduler.size + (this.flight === undefined ? 0 : 1);
  }

  get waiting(): number {
    return this.scheduler.size;
  }

  get inFlight(): Command | undefined {
    return this.flight?.command;
  }

  get stats(): Readonly<CommandQueueStats> {
    return this.counters;
  }

  /**
   * Resolves with the complete response. Rejects: ResourceExhaustedError "command queue of <depth> is
   * full" / "<consumer> already has <n> commands queued (limit <n>)" / a response over
   * maxResponseBytes; TimeoutError "no response within <t> ms"; whatever fail() was given;
   * UnavailableError "consumer left" / "command queue closed"; ValidationError for an empty request
   * or a timeout that is not positive.
   */
  submit(command: Command): Promise<Buffer> {
    const refusal = this.refusal(command);
    if (refusal !== undefined) return Promise.reject(refusal);
    let entry!: Entry;
    const response = new Promise<Buffer>((resolve, reject) => {
      entry = { command, resolve, reject, submittedAt: this.now(), dispatchedAt: 0, written: false, orphaned: false, timer: undefined };
    });
    this.counts.set(command.consumer, (this.counts.get(command.consumer) ?? 0) + 1);
    this.scheduler.add(entry);
    this.pump();
    return response;
  }

  /** All device output goes here: to the in-flight command's framer, the rest (and output while idle) to unsolicited. */
  onDeviceData(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const entry = this.flight;
    if (entry === undefined || !entry.written) {
      try {
        this.outside(chunk);
      } finally {
        this.pump();
      }
      return;
    }
    let used: number;
    try {
      used = this.framer.push(chunk);
    } catch (err) {
      // Oversized: the bytes so far are dropped with the command's error; later ones are unsolicited.
      this.finish(entry);
      if (!entry.orphaned) entry.reject(err as DeviceMeshError);
      this.pump();
      return;
    }
    if (used < 0) {
      if (this.framer.idleGapMs !== undefined) {
        this.lastDataAt = this.now();
        if (this.wakeTimer === undefined) this.wakeTimer = this.timers.setTimeout(this.onWake, this.framer.idleGapMs);
      }
      return;
    }
    this.answer(entry);
    try {
      if (used < chunk.length) this.outside(chunk.subarray(used));
    } finally {
      this.pump();
    }
  }

  /** The device is gone: the in-flight and every waiting command reject with err, and so do later submits until reset(). */
  fail(err: DeviceMeshError): void {
    this.failure = err;
    this.abandon(err);
  }

  /** The device is back: commands are accepted again, and it counts as ready. */
  reset(): void {
    this.failure = undefined;
    this.readySeen = true;
    this.readyText = '';
    this.pump();
  }

  /**
   * A consumer left: its waiting commands reject (UnavailableError "consumer left"), and so does its
   * in-flight one, which keeps the device until its response or timeout (then seen by no one), so
   * that its answer is not taken for the next command's; one still waiting for the prompt is dropped.
   */
  removeConsumer(consumer: string): void {
    const leaving = this.scheduler.removeConsumer(consumer).map(waitingEntry);
    for (const entry of leaving) this.release(entry.command.consumer);
    const gone = new UnavailableError('consumer left');
    for (const entry of leaving) entry.reject(gone);
    const flight = this.flight;
    if (flight !== undefined && flight.command.consumer === consumer && !flight.orphaned) {
      flight.orphaned = true;
      // Not written yet (waiting for the prompt): there is nothing to keep in step with.
      if (!flight.written) this.finish(flight);
      flight.reject(gone);
    }
    this.pump();
  }

  /** Cancels timers; rejects what is left with UnavailableError. */
  close(): void {
    this.closed = true;
    this.abandon(new UnavailableError('command queue closed'));
    this.clearWake();
  }

  private refusal(command: Command): DeviceMeshError | undefined {
    if (this.closed) return new UnavailableError('command queue closed');
    if (this.failure !== undefined) return this.failure;
    if (command.request.length === 0) return new ValidationError('command.request', 'is empty');
    if (!(command.timeoutMs > 0)) return new ValidationError('command.timeoutMs', `${command.timeoutMs} is not a positive number of ms`);
    const limit = this.options.perConsumer;
    const mine = this.counts.get(command.consumer) ?? 0;
    if (mine >= limit) {
      this.counters.refused++;
      return new ResourceExhaustedError(`${command.consumer} already has ${mine} commands queued (limit ${limit})`);
    }
    if (this.depth >= this.options.depth) {
      this.counters.refused++;
      return new ResourceExhaustedError(`command queue of ${this.options.depth} is full`);
    }
    return undefined;
  }

  /**
   * Moves on as far as it can: writes a request whose handshake is done, dispatches while the device
   * is free and the scheduler has a pick. A call from within (a callback) leaves it to the outer loop.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.failure === undefined && !this.closed) {
        const flight = this.flight;
        if (flight !== undefined) {
          if (flight.written || !this.readySeen) return;
          this.writeRequest(flight);
          continue;
        }
        if (this.scheduler.size === 0) return;
        const now = this.now();
        const next = this.scheduler.take(now);
        if (next === undefined) {
          this.armWake(this.scheduler.wakeInMs(now));
          return;
        }
        this.dispatch(waitingEntry(next), now);
      }
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(entry: Entry, now: number): void {
    this.clearWake();
    this.flight = entry;
    entry.dispatchedAt = now;
    this.counters.dispatched++;
    this.counters.waitMsTotal += now - entry.submittedAt;
    entry.command.dispatched?.(now - entry.submittedAt);
    if (entry.command.timeoutMs <= MAX_TIMER_MS) entry.timer = this.timers.setTimeout(this.onTimeout, entry.command.timeoutMs);
  }

  private writeRequest(entry: Entry): void {
    entry.written = true;
    if (this.options.ready !== undefined) {
      // Each request takes its own prompt.
      this.readySeen = false;
      this.readyText = '';
    }
    const answerless = entry.command.answerlessMs;
    if (answerless !== undefined) {
      if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
      entry.timer = this.timers.setTimeout(this.onTimeout, answerless);
    }
    try {
      this.options.write(entry.command.request);
    } catch (err) {
      if (this.flight !== entry) return;
      this.finish(entry);
      if (entry.orphaned) return;
      entry.reject(err instanceof DeviceMeshError ? err : new DeviceError(`writing a command failed: ${errorMessage(err)}`, { cause: err }));
    }
  }

  /** Output that is no response: to the ready pattern, then to `unsolicited`. */
  private outside(chunk: Buffer): void {
    const ready = this.options.ready;
    if (ready !== undefined && !this.readySeen) {
      this.readyText += chunk.toString('latin1');
      if (this.readyText.length > READY_WINDOW) this.readyText = this.readyText.slice(-READY_WINDOW);
      ready.lastIndex = 0;
      if (ready.test(this.readyText)) {
        this.readySeen = true;
        this.readyText = '';
      }
    }
    this.options.unsolicited(chunk);
  }

  private answer(entry: Entry): void {
    const response = this.framer.take();
    this.counters.completed++;
    this.finish(entry);
    if (!entry.orphaned) entry.resolve(response);
  }

  /** The in-flight command is over, however it ended. */
  private finish(entry: Entry): void {
    this.flight = undefined;
    if (entry.timer !== undefined) {
      this.timers.clearTimeout(entry.timer);
      entry.timer = undefined;
    }
    this.clearWake();
    if (this.framer.length > 0) this.framer.take();
    this.release(entry.command.consumer);
    this.scheduler.completed(entry.command, entry.dispatchedAt, this.now());
  }

  private release(consumer: string): void {
    const left = (this.counts.get(consumer) ?? 1) - 1;
    if (left > 0) this.counts.set(consumer, left);
    else this.counts.delete(consumer);
  }

  /** Rejects the in-flight and every waiting command with err. */
  private abandon(err: DeviceMeshError): void {
    const flight = this.flight;
    if (flight !== undefined) {
      this.finish(flight);
      if (!flight.orphaned) flight.reject(err);
    }
    const entries = this.scheduler.clear().map(waitingEntry);
    for (const entry of entries) this.release(entry.command.consumer);
    for (const entry of entries) entry.reject(err);
  }

  private armWake(ms: number | undefined): void {
    this.clearWake();
    if (ms !== undefined) this.wakeTimer = this.timers.setTimeout(this.onWake, Math.max(0, ms));
  }

  private clearWake(): void {
    if (this.wakeTimer === undefined) return;
    this.timers.clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }

  private readonly onTimeout = (): void => {
    const entry = this.flight;
    if (entry === undefined) return;
    entry.timer = undefined;
    if (entry.written && entry.command.answerlessMs !== undefined) {
      // Its hold is over; whatever the device said meanwhile is its response (normally nothing).
      this.answer(entry);
      this.pump();
      return;
    }
    this.counters.timedOut++;
    const t = entry.command.timeoutMs;
    const why = entry.written ? '' : ` (the device showed no ready prompt ${String(this.options.ready)})`;
    this.finish(entry);
    if (!entry.orphaned) entry.reject(new TimeoutError(`no response within ${t} ms${why}`));
    this.pump();
  };

  /** The idle gap's quiet time may be over, or the scheduler may pick now. */
  private readonly onWake = (): void => {
    this.wakeTimer = undefined;
    const entry = this.flight;
    const gap = this.framer.idleGapMs;
    if (entry === undefined) {
      this.pump();
      return;
    }
    if (gap === undefined || !entry.written || this.framer.length === 0) return;
    const quiet = this.now() - this.lastDataAt;
    if (quiet < gap) {
      this.wakeTimer = this.timers.setTimeout(this.onWake, gap - quiet);
      return;
    }
    this.answer(entry);
    this.pump();
  };
}

/** The scheduler hands back what the queue gave it: only Entry objects are ever added. */
function waitingEntry(item: Queued): Entry {
  return item as Entry;
}
