import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import {
  encodeFrame,
  encodeHeader,
  encodeWindow,
  FrameType,
  HEADER_SIZE,
  isFrameType,
  MAX_PAYLOAD,
} from '../../../src/socket-plane/frame';
import { FrameDecoder } from '../../../src/socket-plane/frame-decoder';

interface Frame {
  type: FrameType;
  session: number;
  payload: Buffer;
}

/** Feeds `chunks` to a fresh decoder; payloads are copied since the decoder hands out views. */
function decodeAll(chunks: Buffer[]): Frame[] {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((type, session, payload) => frames.push({ type, session, payload: Buffer.from(payload) }));
  for (const chunk of chunks) decoder.push(chunk);
  return frames;
}

/** Cuts `data` at the given offsets (any order, duplicates and out-of-range ones ignored). */
function cut(data: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const p of [...points, data.length]) {
    if (p < start) continue;
    chunks.push(data.subarray(start, p));
    start = p;
  }
  return chunks;
}

const frameArb: fc.Arbitrary<Frame> = fc.record({
  type: fc.constantFrom(...([1, 2, 3, 4, 5, 6, 7] as FrameType[])),
  session: fc.nat({ max: 0xffffffff }),
  payload: fc.oneof(
    { weight: 5, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 60_000, maxLength: 70_000 }) },
  ).map((a) => Buffer.from(a)),
})
  // fast-check's records have no prototype; the decoder's frames are plain objects.
  .map(({ type, session, payload }) => ({ type, session, payload }));

describe('socket plane: frames', () => {
  it('encodes the header as length, type, session', () => {
    const header = encodeHeader(FrameType.Data, 0xdeadbeef, 513);
    assert.equal(header.length, HEADER_SIZE);
    assert.deepEqual([...header], [0, 0, 2, 1, 3, 0xde, 0xad, 0xbe, 0xef]);
  });

  it('round-trips every frame type through the decoder', () => {
    const frames: Frame[] = [
      { type: FrameType.Open, session: 1, payload: Buffer.from('{"mappingId":"m","workloadId":"w"}') },
      { type: FrameType.OpenOk, session: 1, payload: Buffer.alloc(0) },
      { type: FrameType.Data, session: 3, payload: Buffer.from([0, 1, 2, 255]) },
      { type: FrameType.Close, session: 3, payload: Buffer.alloc(0) },
      { type: FrameType.Reset, session: 5, payload: Buffer.from('{"code":"NOT_FOUND","message":"x"}') },
      { type: FrameType.GoAway, session: 0, payload: Buffer.from('{}') },
    ];
    const wire = Buffer.concat([...frames.map((f) => encodeFrame(f.type, f.session, f.payload)), encodeWindow(7, 65_536)]);
    const decoded = decodeAll([wire]);
    assert.deepEqual(decoded.slice(0, -1), frames);
    const window = decoded[decoded.length - 1]!;
    assert.equal(window.type, FrameType.Window);
    assert.equal(window.session, 7);
    assert.equal(window.payload.readUInt32BE(0), 65_536);
  });

  it('decodes any sequence of frames cut into arbitrary chunks to the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, offsets) => {
        const wire = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.session, f.payload)));
        assert.deepEqual(decodeAll(cut(wire, offsets)), frames);
      }),
      { numRuns: 300 },
    );
  });

  it('decodes byte by byte', () => {
    const frames: Frame[] = [
      { type: FrameType.Data, session: 9, payload: Buffer.from('hello') },
      { type: FrameType.Close, session: 9, payload: Buffer.alloc(0) },
    ];
    const wire = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.session, f.payload)));
    assert.deepEqual(decodeAll([...wire].map((b) => Buffer.from([b]))), frames);
  });

  it('on garbage either decodes valid frames or throws ProtocolError, and always returns', () => {
    const garbage = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      // Plausible headers make the decoder get further than random bytes usually do.
      fc
        .array(
          fc.tuple(fc.nat({ max: 400 }), fc.nat({ max: 12 }), fc.nat({ max: 0xffffffff }), fc.uint8Array({ maxLength: 400 })),
          { maxLength: 6 },
        )
        .map((parts) => {
          const bufs = parts.map(([len, type, session, bytes]) => {
            const header = Buffer.alloc(HEADER_SIZE);
            header.writeUInt32BE(len, 0);
            header.writeUInt8(type, 4);
            header.writeUInt32BE(session, 5);
            return Buffer.concat([header, Buffer.from(bytes)]);
          });
          return new Uint8Array(Buffer.concat(bufs));
        }),
    );
    fc.assert(
      fc.property(garbage, fc.array(fc.nat(), { maxLength: 20 }), (bytes, offsets) => {
        const decoder = new FrameDecoder((type, _session, payload) => {
          assert.ok(isFrameType(type), `decoded an invalid type ${type}`);
          assert.ok(payload.length <= MAX_PAYLOAD);
        });
        try {
          for (const chunk of cut(Buffer.from(bytes), offsets)) decoder.push(chunk);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
          assert.throws(() => decoder.push(Buffer.alloc(1)), ProtocolError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects an unknown frame type and an oversized length before buffering the payload', () => {
    assert.throws(() => decodeAll([Buffer.from([0, 0, 0, 0, 0x42, 0, 0, 0, 1])]), /unknown frame type 0x42/);
    const huge = encodeHeader(FrameType.Data, 1, MAX_PAYLOAD + 1);
    assert.throws(() => decodeAll([huge]), (err: unknown) => err instanceof ProtocolError && /exceeds the limit/.test(err.message));
    // Split header: the length is checked as soon as the header is whole.
    assert.throws(() => decodeAll([huge.subarray(0, 4), huge.subarray(4)]), ProtocolError);
  });
});
