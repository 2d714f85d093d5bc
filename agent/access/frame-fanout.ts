import type { Counter } from '../../src/telemetry/stats';

/** A session as frame fan-out sees it: its buffer, and whether it has had the stream header. */
export interface FrameConsumer {
  primed: boolean;
  readonly framesDropped: Counter;
  readonly readableLength: number;
  readonly readableHighWaterMark: number;
  deliver(chunk: Buffer): boolean;
}

/**
 * One unit of a framed capture (see FramedStream) to every session on the device. A session
 * gets the header before anything else (the header chunk itself, or the stored one when it
 * joined later); a frame goes whole to each session whose buffer is below its high-water mark
 * and is dropped, counted, for one that is full, so a session that stops reading never pauses the
 * capture for the others and never receives part of a frame.
 */
export function fanOutFrame(consumers: readonly FrameConsumer[], chunk: Buffer, header: Buffer | undefined): void {
  for (let i = 0; i < consumers.length; i++) {
    const consumer = consumers[i] as FrameConsumer;
    if (!consumer.primed) {
      if (header === undefined) continue;
      consumer.primed = true;
      consumer.deliver(header);
      if (chunk === header) continue;
    }
    if (consumer.readableLength >= consumer.readableHighWaterMark) consumer.framesDropped.add(1);
    else consumer.deliver(chunk);
  }
}
