import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { FrameArrivals } from '../../../bench/media/frame-arrivals';
import { parseOptions } from '../../../bench/media/options';
import { writeElementHeader } from '../../../src/media/ebml';
import { CLUSTER_ID, EBML_ID, SEGMENT_ID } from '../../../src/media/matroska-framer';

function element(id: number, payload: Buffer): Buffer {
  return Buffer.concat([writeElementHeader(id, payload.length), payload]);
}

/** A live stream as ffmpeg writes it: EBML header, Segment of unknown size, then clusters, each with its Timecode (0xE7). */
function liveStream(timecodes: readonly number[]): Buffer {
  const header = Buffer.concat([element(EBML_ID, Buffer.from('matroska')), writeElementHeader(SEGMENT_ID, null), element(0x1549a966, Buffer.alloc(7, 1))]);
  const clusters = timecodes.map((t) => element(CLUSTER_ID, Buffer.concat([element(0xe7, Buffer.from([t >> 8, t & 0xff])), Buffer.alloc(40, t & 0xff)])));
  return Buffer.concat([header, ...clusters]);
}

describe('bench/media', () => {
  it('FrameArrivals: every cluster is one frame (the header none), whatever the chunks, each with its own key', async () => {
    const input = new PassThrough();
    const arrivals = new FrameArrivals(input);
    const bytes = liveStream([0, 33, 67, 100]);
    for (let at = 0; at < bytes.length; at += 7) input.write(bytes.subarray(at, at + 7));
    const first = await arrivals.first(1000, 'the test stream');
    assert.equal(arrivals.frames.length, 4);
    assert.equal(new Set(arrivals.frames.map((f) => f.key)).size, 4);
    assert.equal(first, arrivals.frames[0]);
    assert.ok(arrivals.frames.every((f) => f.bytes === (arrivals.frames[0]?.bytes ?? 0)));
    assert.deepEqual(arrivals.within(first.ms, first.ms), []);
    assert.equal(arrivals.within(first.ms, Number.POSITIVE_INFINITY).length, 4);
  });

  it('FrameArrivals: a stream that is not Matroska fails the reading with the framer\'s reason', async () => {
    const input = new PassThrough();
    const arrivals = new FrameArrivals(input);
    input.write(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    await assert.rejects(arrivals.first(1000, 'the app socket'), /the app socket: Matroska: the stream starts with element/);
    assert.equal(arrivals.frames.length, 0);
  });

  it('FrameArrivals: no frame in time is an error that says from where', async () => {
    await assert.rejects(new FrameArrivals(new PassThrough()).first(20, 'the tap'), /no frame from the tap within 20 ms/);
  });

  it('refuses malformed flags with the flag named, and --help', () => {
    assert.equal(parseOptions(['--help']), undefined);
    assert.throws(() => parseOptions(['--seconds', 'long']), /--seconds.*"long" is not an integer/);
    assert.throws(() => parseOptions(['--fps', '0']), /--fps.*from 1 to 240/);
    assert.throws(() => parseOptions(['--width', '1e3']), /--width/);
    assert.throws(() => parseOptions(['--bogus']), /Unknown option '--bogus'/);
    assert.throws(() => parseOptions(['stray']), /positional/);
    const quick = parseOptions(['--quick', '--out', 'x.json']);
    assert.deepEqual({ ...quick, out: path.basename(quick?.out ?? '') }, { seconds: 3, warmUpSeconds: 1, width: 640, height: 480, fps: 30, quick: true, out: 'x.json' });
    assert.equal(parseOptions([])?.seconds, 20);
  });
});
