import type { LimitChange } from './adaptation-controller';

/** A limit change as the event log keeps it: with the control cycle that decided it and the version that carried it out. */
export interface AdaptationEvent extends LimitChange {
  /** The control cycle's number since the control plane started (the adaptation_cycles counter). */
  cycle: number;
  version: string;
}

/** The latest changes of adaptive limits, oldest first, for the admin's GET /adaptation. */
export class AdaptationEvents {
  private readonly events: AdaptationEvent[] = [];

  constructor(private readonly capacity = 200) {}

  add(event: AdaptationEvent): void {
    this.events.push(event);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
  }

  list(): AdaptationEvent[] {
    return [...this.events];
  }
}
