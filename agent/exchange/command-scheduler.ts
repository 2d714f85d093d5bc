/** One command of a consumer, as the queue holds it. */
export interface Command {
  /** The consumer's key (one per session). */
  readonly consumer: string;
  /** Higher first. */
  readonly priority: number;
  readonly request: Buffer;
  /** From dispatch to complete response. */
  readonly timeoutMs: number;
  /** No response comes (a Modbus broadcast): the command holds the device this long after its request is written, then completes with no bytes. */
  readonly answerlessMs?: number;
  /** Told when the command leaves the queue for the device, with how long it waited (ms): metrics and spans. */
  readonly dispatched?: (waitedMs: number) => void;
}

/** Decides which waiting command a device serves next; called only while none is in flight. */
export interface CommandScheduler {
  /** Index into `waiting` (arrival order) of the command to dispatch now, or -1 to dispatch nothing yet. */
  pick(waiting: readonly Command[], now: number): number;
  /** A dispatched command finished (answered, timed out or failed) after holding the device from start to end. */
  completed(command: Command, start: number, end: number): void;
  /** After a -1: ms until pick may answer differently without a new command or completion; undefined = only on those. */
  wakeInMs(now: number): number | undefined;
  /** A consumer left: forget its state. */
  removeConsumer(consumer: string): void;
}

/** Shared sharing: the highest priority first, in order of arrival within equal priority. */
export class PriorityScheduler implements CommandScheduler {
  pick(waiting: readonly Command[], _now: number): number {
    let best = -1;
    let bestPriority = -Infinity;
    for (let i = 0; i < waiting.length; i++) {
      const priority = (waiting[i] as Command).priority;
      if (best < 0 || priority > bestPriority) {
        best = i;
        bestPriority = priority;
      }
    }
    return best;
  }

  completed(_command: Command, _start: number, _end: number): void {
    // Priorities alone decide; nothing to account.
  }

  wakeInMs(_now: number): number | undefined {
    return undefined;
  }

  removeConsumer(_consumer: string): void {
    // No per-consumer state.
  }
}
