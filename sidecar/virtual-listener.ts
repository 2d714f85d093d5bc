import type { Mapping } from '../src/proto/types';

/** A served virtual device, whatever its protocol: what VirtualDevices needs of it. */
export interface VirtualListener {
  readonly address: string;
  readonly mapping: Mapping;
  readonly connectionCount: number;
  /** Same listen address, new content: connections made from now on use it. */
  update(mapping: Mapping): void;
  flushStats(): void;
  /** Stops accepting at once; ends the connections still live after `timeoutMs`. */
  drain(timeoutMs: number, reason: string): Promise<void>;
  /** Stops accepting and ends every live connection, telling the agent why. */
  close(reason: string): Promise<void>;
}

/** Waits until `live()` is 0 or `timeoutMs` has passed: a draining listener's grace period. */
export async function drainPeriod(live: () => number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (live() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}
