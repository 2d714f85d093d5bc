import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { MatroskaFramer } from '../../src/media/matroska-framer';

/** Leading bytes of a cluster that tell frames apart: its ID, size and Timecode element. */
const FRAME_KEY_BYTES = 24;

/** One frame as a reader saw it: which one, when its last byte arrived (performance.now ms), its size. */
export interface FrameArrival {
  key: string;
  ms: number;
  bytes: number;
}

/**
 * The whole frames of one reading of a live Matroska stream (the capture's one cluster per frame),
 * each timed as its last byte arrives. The stream header is not a frame. Two readings of one
 * capture see byte-identical clusters, so a frame's key finds it in the other.
 */
export class FrameArrivals {
  readonly frames: FrameArrival[] = [];
  private readonly framer: MatroskaFramer;
  /** Why the reading stopped early: the stream failed, or it is not Matroska (a ProtocolError). */
  error: Error | undefined;
  private sawHeader = false;
  private waiting: (() => void) | undefined;

  constructor(stream: Readable) {
    this.framer = new MatroskaFramer((unit) => {
      const ms = performance.now();
      if (!this.sawHeader) {
        this.sawHeader = true;
        return;
      }
      this.frames.push({ key: unit.toString('latin1', 0, Math.min(FRAME_KEY_BYTES, unit.length)), ms, bytes: unit.length });
      this.waiting?.();
    });
    stream.on('data', (chunk: Buffer) => {
      try {
        this.framer.push(chunk);
      } catch (err) {
        stream.destroy(err as Error);
      }
    });
    stream.on('error', (err: Error) => {
      this.error ??= err;
      this.waiting?.();
    });
  }

  /** Resolves at the first frame; rejects after `timeoutMs` without one, or once the reading failed. */
  first(timeoutMs: number, what: string): Promise<FrameArrival> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame from ${what} within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        const frame = this.frames[0];
        if (!frame && !this.error) return;
        clearTimeout(timer);
        this.waiting = undefined;
        if (frame) resolve(frame);
        else reject(new Error(`${what}: ${this.error?.message ?? 'failed'}`));
      };
      this.waiting = check;
      check();
    });
  }

  /** The frames whose last byte arrived in [fromMs, toMs). */
  within(fromMs: number, toMs: number): FrameArrival[] {
    return this.frames.filter((f) => f.ms >= fromMs && f.ms < toMs);
  }
}
