import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import { readElementHeader, writeElementHeader } from '../../../src/media/ebml';
import { CLUSTER_ID, EBML_ID, MatroskaFramer, SEGMENT_ID } from '../../../src/media/matroska-framer';

const INFO_ID = 0x1549a966;
const TRACKS_ID = 0x1654ae6b;

function element(id: number, payload: Buffer): Buffer {
  return Buffer.concat([writeElementHeader(id, payload.length), payload]);
}

/** A live stream as ffmpeg writes it: EBML header, Segment of unknown size, Info, Tracks, clusters. */
function stream(clusters: readonly Buffer[]): { header: Buffer; units: Buffer[]; bytes: Buffer } {
  const header = Buffer.concat([
    element(EBML_ID, Buffer.from([0x42, 0x82, 0x88, ...Buffer.from('matroska')])),
    writeElementHeader(SEGMENT_ID, null),
    element(INFO_ID, Buffer.from([0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40])),
    element(TRACKS_ID, Buffer.alloc(20, 7)),
  ]);
  const units = clusters.map((c) => element(CLUSTER_ID, c));
  return { header, units, bytes: Buffer.concat([header, ...units]) };
}

function cut(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= bytes.length) break;
    pieces.push(bytes.subarray(at, at + size));
    at += size;
  }
  if (at < bytes.length) pieces.push(bytes.subarray(at));
  return pieces;
}

function frame(bytes: readonly Buffer[], max?: number): { units: Buffer[]; framer: MatroskaFramer } {
  const units: Buffer[] = [];
  const framer = new MatroskaFramer((u) => units.push(Buffer.from(u)), max);
  for (const b of bytes) framer.push(b);
  return { units, framer };
}

describe('src/media/matroska-framer', () => {
  it('property: any cut of a stream gives back the header, then each cluster whole, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { maxLength: 400 }),
        (payloads, sizes) => {
          const { header, units, bytes } = stream(payloads.map((p) => Buffer.from(p)));
          const got = frame(cut(bytes, sizes));
          const expected = payloads.length === 0 ? [] : [header, ...units];
          assert.deepEqual(got.units, expected);
          assert.equal(got.framer.pending, 0);
          if (payloads.length > 0) assert.deepEqual(got.framer.header, header);
        },
      ),
    );
  });

  it('property: EBML sizes round-trip through write and read', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 }), (size) => {
        const bytes = writeElementHeader(CLUSTER_ID, size);
        assert.deepEqual(readElementHeader(bytes, bytes.length), { id: CLUSTER_ID, size, headerLength: bytes.length });
      }),
    );
  });

  it('property: arbitrary bytes either frame into units that concatenate to a prefix of the input, or throw a ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (garbage, withHeader) => {
        const prefix = withHeader ? stream([]).header : Buffer.alloc(0);
        const input = Buffer.concat([prefix, Buffer.from(garbage)]);
        const units: Buffer[] = [];
        const framer = new MatroskaFramer((u) => units.push(Buffer.from(u)), 1000);
        try {
          framer.push(input);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
          return;
        }
        const out = Buffer.concat(units);
        assert.deepEqual(out, input.subarray(0, out.length));
      }),
    );
  });

  it('refuses malformed streams with a ProtocolError naming what is wrong, and refuses everything after', () => {
    const refused = (bytes: Buffer, reason: RegExp, max?: number): void => {
      const framer = new MatroskaFramer(() => undefined, max);
      assert.throws(() => framer.push(bytes), (e: unknown) => e instanceof ProtocolError && reason.test(e.message));
      assert.throws(() => framer.push(Buffer.from([1])), /already failed/);
    };
    const { header } = stream([]);
    refused(element(SEGMENT_ID, Buffer.alloc(2)), /starts with element 0x18538067, not an EBML header/);
    refused(Buffer.from([0x00, 0x81]), /0x0 cannot start an element ID/);
    refused(Buffer.from([0x08, 0x81]), /cannot start an element ID/);
    refused(Buffer.concat([element(EBML_ID, Buffer.alloc(1)), element(INFO_ID, Buffer.alloc(1))]), /where the Segment should start/);
    refused(Buffer.concat([writeElementHeader(EBML_ID, null)]), /unknown size/);
    refused(Buffer.concat([header, writeElementHeader(CLUSTER_ID, null)]), /0x1f43b675 of unknown size/);
    refused(Buffer.concat([header, Buffer.from([0x1f, 0x43, 0xb6, 0x75, 0x00])]), /size longer than 8 bytes/);
    refused(Buffer.concat([header, writeElementHeader(CLUSTER_ID, 5000)]), /over the 1000-byte limit/, 1000);
    refused(Buffer.concat([header, element(CLUSTER_ID, Buffer.alloc(1)), element(EBML_ID, Buffer.alloc(1))]), /second stream header/);
  });

  it('hands out a unit held in one chunk as a view, without copying', () => {
    const { bytes, header } = stream([Buffer.alloc(100, 1)]);
    const units: Buffer[] = [];
    new MatroskaFramer((u) => units.push(u)).push(bytes);
    assert.equal(units.length, 2);
    assert.equal(units[1]?.buffer, bytes.buffer);
    assert.equal(units[0]?.length, header.length);
  });
});
