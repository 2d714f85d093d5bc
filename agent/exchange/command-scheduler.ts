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

/** What the queue keeps of a waiting command: the scheduler holds these and hands them back. */
export interface Queued {
  readonly command: Command;
}

/**
 * Holds the waiting commands and decides which one a device serves next; asked only while none is
 * in flight.
 */
export interface CommandScheduler<T extends Queued = Queued> {
  /** Commands waiting. */
  readonly size: number;
  /** A command starts waiting. */
  add(item: T): void;
  /** Takes the command to dispatch now out of the waiting ones, or undefined to dispatch nothing yet. */
  take(now: number): T | undefined;
  /** A dispatched command finished (answered, timed out or failed) after holding the device from start to end. */
  completed(command: Command, start: number, end: number): void;
  /** After an undefined take: ms until it may answer differently without a new command or completion; undefined = only on those. */
  wakeInMs(now: number): number | undefined;
  /** A consumer left: takes out its waiting commands (returned in arrival order) and forgets its state. */
  removeConsumer(consumer: string): T[];
  /** Takes out every waiting command, in arrival order. */
  clear(): T[];
}

/** Taken slots a level keeps before it drops them (when they are also half of it): amortised O(1). */
const COMPACT_AT = 1024;

/** One priority's commands in arrival order; the head index makes shift O(1). */
interface Level<T> {
  readonly priority: number;
  items: Array<{ readonly item: T; readonly seq: number }>;
  head: number;
}

/**
 * Shared sharing: the highest priority first, in order of arrival within equal priority. One FIFO
 * per priority and the priorities present kept sorted, so a take is O(1) and an add O(1) (or a
 * binary search when a priority is new): a deep queue costs nothing per dispatch.
 */
export class PriorityScheduler<T extends Queued = Queued> implements CommandScheduler<T> {
  /** Levels with commands, highest priority first. */
  private readonly levels: Array<Level<T>> = [];
  private readonly byPriority = new Map<number, Level<T>>();
  private seq = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    const priority = item.command.priority;
    let level = this.byPriority.get(priority);
    if (level === undefined) {
      level = { priority, items: [], head: 0 };
      this.byPriority.set(priority, level);
      let lo = 0;
      let hi = this.levels.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((this.levels[mid] as Level<T>).priority > priority) lo = mid + 1;
        else hi = mid;
      }
      this.levels.splice(lo, 0, level);
    }
    level.items.push({ item, seq: this.seq++ });
    this.count++;
  }

  take(_now: number): T | undefined {
    const level = this.levels[0];
    if (level === undefined) return undefined;
    const slot = level.items[level.head++] as { readonly item: T };
    this.count--;
    if (level.head === level.items.length) this.drop(level);
    else if (level.head >= COMPACT_AT && level.head * 2 >= level.items.length) {
      // A level that never empties would otherwise keep every command it ever held.
      level.items = level.items.slice(level.head);
      level.head = 0;
    }
    return slot.item;
  }

  completed(_command: Command, _start: number, _end: number): void {
    // Priorities alone decide; nothing to account.
  }

  wakeInMs(_now: number): number | undefined {
    return undefined;
  }

  removeConsumer(consumer: string): T[] {
    return this.extract((item) => item.command.consumer === consumer);
  }

  clear(): T[] {
    return this.extract(() => true);
  }

  /** Takes out the waiting commands that match, in arrival order: rare (a consumer leaving, the device failing), so O(n). */
  private extract(matches: (item: T) => boolean): T[] {
    const out: Array<{ readonly item: T; readonly seq: number }> = [];
    for (const level of [...this.levels]) {
      const kept: Level<T>['items'] = [];
      for (let i = level.head; i < level.items.length; i++) {
        const slot = level.items[i] as { readonly item: T; readonly seq: number };
        (matches(slot.item) ? out : kept).push(slot);
      }
      level.items = kept;
      level.head = 0;
      if (kept.length === 0) this.drop(level);
    }
    this.count -= out.length;
    return out.sort((a, b) => a.seq - b.seq).map((slot) => slot.item);
  }

  private drop(level: Level<T>): void {
    this.byPriority.delete(level.priority);
    this.levels.splice(this.levels.indexOf(level), 1);
  }
}
