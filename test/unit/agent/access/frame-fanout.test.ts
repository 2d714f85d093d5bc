import { strict as assert } from 'node:assert';
import { fanOutFrame, type FrameConsumer } from '../../../../agent/access/frame-fanout';
import { type Counter, Stats } from '../../../../src/telemetry/stats';

class Consumer implements FrameConsumer {
  primed = false;
  readonly got: Buffer[] = [];
  readonly readableHighWaterMark = 10;
  readableLength = 0;
  readonly framesDropped: Counter;
  constructor(stats: Stats, name: string) {
    this.framesDropped = stats.counter('media_frames_dropped', { mapping: name });
  }
  deliver(chunk: Buffer): boolean {
    this.got.push(chunk);
    this.readableLength += chunk.length;
    return this.readableLength < this.readableHighWaterMark;
  }
}

describe('agent/frame-fanout', () => {
  it('header first to each session, whole frames to those with room, counted drops for the full one', () => {
    const stats = new Stats({});
    const reading = new Consumer(stats, 'a');
    const stalled = new Consumer(stats, 'b');
    const header = Buffer.from('H');
    fanOutFrame([reading, stalled], header, header);
    const frames = [0, 1, 2, 3, 4].map((i) => Buffer.alloc(6, i));
    for (const f of frames) {
      fanOutFrame([reading, stalled], f, header);
      reading.readableLength = 0;
    }
    assert.deepEqual(reading.got, [header, ...frames]);
    // 1 + 6 bytes: below 10, one more frame goes; then it is full and the rest are dropped whole.
    assert.deepEqual(stalled.got, [header, frames[0], frames[1]]);
    assert.equal(stalled.framesDropped.value, 3);
    assert.equal(reading.framesDropped.value, 0);
  });

  it('a session joining later gets the stored header before its first frame; none before the header exists', () => {
    const stats = new Stats({});
    const early = new Consumer(stats, 'a');
    fanOutFrame([early], Buffer.from('x'), undefined);
    assert.deepEqual(early.got, []);
    const late = new Consumer(stats, 'b');
    const header = Buffer.from('H');
    const frame = Buffer.from('F');
    fanOutFrame([late], frame, header);
    assert.deepEqual(late.got, [header, frame]);
  });
});
