import { strict as assert } from 'node:assert';
import type * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as fc from 'fast-check';
import { DeviceMeshError, ProtocolError } from '../../src/errors';
import { FramedConnection, type OpenDecision } from '../../src/socket-plane/connection';
import { decodeError, decodeOpen, encodeOpen } from '../../src/socket-plane/control-messages';
import { decodeCommand, decodeCommandResult } from '../../src/socket-plane/device-command';
import { decodeDeviceEvent } from '../../src/socket-plane/device-event';
import { encodeFrame, encodeWindow, FrameType, HEADER_SIZE, isFrameType, MAX_PAYLOAD, PREFACE } from '../../src/socket-plane/frame';
import { FrameDecoder } from '../../src/socket-plane/frame-decoder';
import type { Session } from '../../src/socket-plane/session';
import { decodesOrRefuses, fuzzParameters, suiteTimeoutMs } from './fuzz-budget';

/** A socket that takes whatever the connection writes and lets the test push bytes in. */
class FakeSocket extends Duplex {
  readonly remoteAddress = '192.0.2.1';
  readonly remotePort = 4000;
  written = 0;

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  destroySoon(): void {
    this.destroy();
  }

  override _read(): void {
    // Bytes come from the test.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written += chunk.length;
    cb();
  }
}

/** Cuts `bytes` at the given offsets (mod length): the chunks TCP might deliver. */
function cut(bytes: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => (bytes.length === 0 ? 0 : o % bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) chunks.push(bytes.subarray(from, p));
    from = Math.max(from, p);
  }
  chunks.push(bytes.subarray(from));
  return chunks.filter((c) => c.length > 0);
}

/** A frame a peer might send: well-formed headers over payloads that mostly are not. */
const frameArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 12 }), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 }), fc.nat()), fc.uint8Array({ maxLength: 64 }))
    .map(([type, session, payload]) => {
      const frame = encodeFrame(FrameType.Data, session, Buffer.from(payload));
      frame.writeUInt8(type, 4);
      return frame;
    }),
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }))
    .map(([session, mappingId, workloadId]) => encodeFrame(FrameType.Open, session, encodeOpen({ mappingId, workloadId }))),
  fc.tuple(fc.integer({ min: 1, max: 9 }), fc.nat()).map(([session, inc]) => encodeWindow(session, inc)),
  // A header claiming a length the rest does not carry, or more than the limit.
  fc.tuple(fc.nat({ max: MAX_PAYLOAD * 2 }), fc.integer({ min: 0, max: 12 })).map(([length, type]) => {
    const header = Buffer.alloc(HEADER_SIZE);
    header.writeUInt32BE(length, 0);
    header.writeUInt8(type, 4);
    header.writeUInt32BE(1, 5);
    return header;
  }),
);

describe('fuzz: socket plane decoders', function () {
  this.timeout(suiteTimeoutMs());

  it('the frame decoder, on any bytes in any split: valid frames or a ProtocolError, never more than the limit', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 2048 }), fc.array(frameArb, { maxLength: 12 }).map((f) => Buffer.concat(f))), fc.array(fc.nat(), { maxLength: 16 }), (bytes, offsets) => {
        const decoder = new FrameDecoder((type, _session, payload) => {
          assert.ok(isFrameType(type));
          assert.ok(payload.length <= MAX_PAYLOAD);
        });
        decodesOrRefuses(() => {
          for (const chunk of cut(Buffer.from(bytes), offsets)) decoder.push(chunk);
        }, [ProtocolError]);
      }),
      fuzzParameters(),
    );
  });

  it('OPEN, COMMAND, COMMAND_RESULT and EVENT payloads: decoded or a ProtocolError; RESET/GOAWAY payloads always read', () => {
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
      fc.json().map((j) => Buffer.from(j)),
      fc.dictionary(fc.constantFrom('mappingId', 'workloadId', 'code', 'message', '__proto__', 'constructor'), fc.jsonValue()).map((o) => Buffer.from(JSON.stringify(o))),
    );
    fc.assert(
      fc.property(payload, (bytes) => {
        const open = decodesOrRefuses(() => decodeOpen(bytes), [ProtocolError]).value;
        if (open) {
          assert.equal(typeof open.mappingId, 'string');
          assert.equal(typeof open.workloadId, 'string');
        }
        decodesOrRefuses(() => decodeCommand(bytes), [ProtocolError]);
        decodesOrRefuses(() => decodeCommandResult(bytes), [ProtocolError]);
        decodesOrRefuses(() => decodeDeviceEvent(bytes), [ProtocolError]);
        const err = decodesOrRefuses(() => decodeError(bytes), []).value;
        assert.ok(err && typeof err.code === 'string' && typeof err.message === 'string');
      }),
      fuzzParameters(),
    );
  });

  it('a server connection fed any frames after its preface never throws: it carries on or closes with a typed reason', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 16 }), fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (frames, offsets, acceptOpens) => {
        const socket = new FakeSocket();
        const conn = new FramedConnection(socket as unknown as net.Socket, 'server', { maxSessions: 4, prefaceTimeoutMs: 60_000, idleTimeoutMs: 60_000 });
        let closedWith: unknown = 'open';
        conn.on('close', (err: unknown) => (closedWith = err));
        conn.on('protocolError', () => undefined);
        conn.on('open', (decision: OpenDecision) => {
          if (!acceptOpens) return decision.refuse({ code: 'NOT_FOUND', message: 'fuzz' });
          const session: Session = decision.accept();
          session.on('data', (chunk: Buffer) => session.consumed(chunk.length));
          session.on('error', () => undefined);
        });
        decodesOrRefuses(() => {
          for (const chunk of cut(Buffer.concat([PREFACE, ...frames]), offsets)) socket.emit('data', chunk);
        }, []);
        assert.ok(closedWith === 'open' || closedWith instanceof DeviceMeshError, `closed with ${String(closedWith)}`);
        conn.destroy();
      }),
      fuzzParameters(),
    );
  });
});
