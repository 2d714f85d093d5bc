import { ValidationError } from '../../src/errors';
import type { Command, CommandScheduler, Queued } from './command-scheduler';

export interface TimeSliceOptions {
  /** A turn per unit of weight, ms of device time. */
  sliceMs: number;
  /** A consumer's weight; anything but a positive finite number counts as 1. */
  weight: (consumer: string) => number;
}

interface ConsumerState {
  readonly consumer: string;
  /** Device time the consumer may still use in its turn; negative after an overrun, paid back by later turns. */
  deficit: number;
  deviceTime: number;
  /** The pick during which the consumer had a command waiting (compared with TimeSliceScheduler.epoch). */
  seen: number;
  /** That pick's choice among the consumer's own commands: its highest priority, the first of equals. */
  index: number;
  priority: number;
}

/**
 * Time-slice sharing: consumers get the device in turns, in order of first arrival, each turn
 * weight × sliceMs of device time. The holder keeps the device while its turn lasts and it has
 * commands waiting; since the queue asks only between commands, a handover never splits one.
 * An idle holder passes the turn on at once (the device never waits for a consumer that has
 * nothing to send), and a turn not used is not saved up.
 *
 * Deficit round robin with time as the cost: a turn adds its quantum to the consumer's deficit,
 * each command's device time is taken off after it ran, and a command that overran its turn leaves
 * the deficit negative, so later turns pay it back. Over time each busy consumer's share of device
 * time is its weight's share, whatever its commands' lengths.
 *
 * Weights govern consumers that keep commands waiting: one that sends a command only after the
 * answer to its last is idle when the device comes free, and gets one command per turn.
 */
export class TimeSliceScheduler<T extends Queued = Queued> implements CommandScheduler<T> {
  /** The waiting commands in arrival order, and their queue items at the same index. */
  private readonly commands: Command[] = [];
  private readonly items: T[] = [];
  private readonly sliceMs: number;
  private readonly weight: (consumer: string) => number;
  private readonly states = new Map<string, ConsumerState>();
  /** The consumers in order of first arrival, the order of turns. */
  private readonly ring: ConsumerState[] = [];
  /** The ring position of the turn's holder, or of the consumer next in line when `holding` is false. */
  private cursor = 0;
  private holding = false;
  private epoch = 0;

  constructor(options: TimeSliceOptions) {
    if (!(options.sliceMs > 0) || !Number.isFinite(options.sliceMs)) {
      throw new ValidationError('policy.timeSliceMs', `${options.sliceMs} is not a positive number of ms`);
    }
    this.sliceMs = options.sliceMs;
    this.weight = options.weight;
  }

  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    this.items.push(item);
    this.commands.push(item.command);
  }

  /** A scan over the waiting commands (pick): turns are per consumer, and a device's consumers are few. */
  take(now: number): T | undefined {
    const i = this.pick(this.commands, now);
    if (i < 0) return undefined;
    this.commands.splice(i, 1);
    return this.items.splice(i, 1)[0];
  }

  clear(): T[] {
    this.commands.length = 0;
    return this.items.splice(0, this.items.length);
  }

  /** Index into `waiting` (arrival order) of the command to dispatch now, or -1 for none. */
  pick(waiting: readonly Command[], _now: number): number {
    if (waiting.length === 0) return -1;
    const epoch = ++this.epoch;
    for (let i = 0; i < waiting.length; i++) {
      const command = waiting[i] as Command;
      let state = this.states.get(command.consumer);
      if (state === undefined) {
        state = { consumer: command.consumer, deficit: 0, deviceTime: 0, seen: 0, index: 0, priority: 0 };
        this.states.set(command.consumer, state);
        this.ring.push(state);
      }
      if (state.seen !== epoch || command.priority > state.priority) {
        state.seen = epoch;
        state.index = i;
        state.priority = command.priority;
      }
    }
    if (this.holding) {
      const holder = this.ring[this.cursor] as ConsumerState;
      if (holder.seen === epoch && holder.deficit > 0) return holder.index;
      if (holder.deficit > 0) holder.deficit = 0;
      this.cursor = (this.cursor + 1) % this.ring.length;
      this.holding = false;
    }
    return this.nextTurn(epoch).index;
  }

  completed(command: Command, start: number, end: number): void {
    const state = this.states.get(command.consumer);
    if (state === undefined) return;
    const used = Math.max(0, end - start);
    state.deviceTime += used;
    state.deficit -= used;
  }

  wakeInMs(_now: number): number | undefined {
    return undefined;
  }

  removeConsumer(consumer: string): T[] {
    const leaving: T[] = [];
    for (let i = this.items.length - 1; i >= 0; i--) {
      if ((this.commands[i] as Command).consumer !== consumer) continue;
      leaving.unshift(this.items[i] as T);
      this.items.splice(i, 1);
      this.commands.splice(i, 1);
    }
    this.forget(consumer);
    return leaving;
  }

  private forget(consumer: string): void {
    const state = this.states.get(consumer);
    if (state === undefined) return;
    this.states.delete(consumer);
    const at = this.ring.indexOf(state);
    this.ring.splice(at, 1);
    if (at < this.cursor) this.cursor--;
    else if (at === this.cursor) this.holding = false;
    if (this.cursor >= this.ring.length) this.cursor = 0;
  }

  /** Device time (ms) each consumer has had, for metrics and tests. */
  deviceTime(consumer: string): number {
    return this.states.get(consumer)?.deviceTime ?? 0;
  }

  /**
   * Hands the turn to the first consumer from the cursor on that has commands waiting and, with its
   * quantum added, a positive deficit. When a whole round finds none (all still paying back), the
   * rounds it would take are added at once instead of going round one at a time.
   */
  private nextTurn(epoch: number): ConsumerState {
    const n = this.ring.length;
    for (;;) {
      for (let k = 0; k < n; k++) {
        const at = (this.cursor + k) % n;
        const state = this.ring[at] as ConsumerState;
        if (state.seen !== epoch) {
          if (state.deficit > 0) state.deficit = 0;
          continue;
        }
        state.deficit += this.quantum(state);
        if (state.deficit > 0) {
          this.cursor = at;
          this.holding = true;
          return state;
        }
      }
      let rounds = Infinity;
      for (const state of this.ring) {
        if (state.seen === epoch) rounds = Math.min(rounds, Math.floor(-state.deficit / this.quantum(state)) + 1);
      }
      for (const state of this.ring) if (state.seen === epoch) state.deficit += (rounds - 1) * this.quantum(state);
    }
  }

  private quantum(state: ConsumerState): number {
    const weight = this.weight(state.consumer);
    return (weight > 0 && Number.isFinite(weight) ? weight : 1) * this.sliceMs;
  }
}
