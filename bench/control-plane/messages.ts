/** What the benchmark's parent and its proxy workers say to each other over IPC. */
import type { AdsProtocol } from '../../src/xds/protocols';

export interface ProxySpec {
  id: string;
  kind: 'agent' | 'sidecar';
  metadata?: Record<string, string>;
}

/** The content of a sidecar's one mapping that the benchmark changes. */
export interface MappingContent {
  baudRate: number;
  bytesPerSecond: string;
}

/** A change the parent waits for: the sidecar has applied (and so ACKs) a mapping with this value. */
export type Expectation = { baudRate: number } | { bytesPerSecond: string };

export type ParentMessage =
  | { type: 'start'; address: string; protocol: AdsProtocol; proxies: ProxySpec[]; timeoutMs: number }
  | {
      type: 'await';
      requestId: number;
      /** CLOCK_MONOTONIC ms: only applications at or after this count. */
      since: number;
      /** Sidecar ids, or every sidecar of this worker. */
      workloads: string[] | 'all';
      expect: Expectation;
      timeoutMs: number;
    }
  | { type: 'stop' };

export type WorkerMessage =
  /**
   * Every proxy applied its first configuration, `connectMs` after the start message arrived;
   * `protocols`: what their clients ended up speaking.
   */
  | { type: 'ready'; connectMs: number; protocols: AdsProtocol[] }
  | { type: 'failed'; message: string }
  /** `times` are CLOCK_MONOTONIC ms of each awaited sidecar's `applied` event. */
  | { type: 'awaited'; requestId: number; times: number[] }
  | { type: 'await-failed'; requestId: number; message: string };

/**
 * process.hrtime is CLOCK_MONOTONIC on Linux, one clock for every process on the machine, so a
 * worker's timestamp and the parent's can be subtracted.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function matches(content: MappingContent | undefined, expect: Expectation): boolean {
  if (!content) return false;
  return 'baudRate' in expect ? content.baudRate === expect.baudRate : content.bytesPerSecond === expect.bytesPerSecond;
}
