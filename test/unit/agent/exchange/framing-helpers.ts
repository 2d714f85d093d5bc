import fc from 'fast-check';
import type { ResponseFramer } from '../../../../agent/exchange/response-framer';

/** What a framer made of a stream: the complete responses in order, and the bytes of the unfinished one. */
export interface Framed {
  responses: string[];
  pending: number;
}

/** Feeds chunks to a framer the way the queue does: the rest of a chunk after a response starts the next one. */
export function frameChunks(framer: ResponseFramer, chunks: readonly Buffer[]): Framed {
  const responses: string[] = [];
  for (const chunk of chunks) {
    let rest = chunk;
    while (rest.length > 0) {
      const used = framer.push(rest);
      if (used < 0) break;
      if (used < 1 || used > rest.length) throw new Error(`push returned ${used} for a chunk of ${rest.length}`);
      responses.push(framer.take().toString('latin1'));
      rest = rest.subarray(used);
    }
  }
  return { responses, pending: framer.length };
}

/** The stream cut at the given positions (any order, duplicates and out-of-range ones ignored). */
export function cut(stream: Buffer, positions: readonly number[]): Buffer[] {
  const at = [...new Set(positions.filter((p) => p > 0 && p < stream.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of at) {
    chunks.push(Buffer.from(stream.subarray(from, p)));
    from = p;
  }
  chunks.push(Buffer.from(stream.subarray(from)));
  return chunks;
}

/** Streams made of the given tokens and arbitrary bytes, so that terminators and near-misses are common. */
export function tokenStream(tokens: readonly string[], maxPieces = 30): fc.Arbitrary<Buffer> {
  const piece = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...tokens).map((t) => Buffer.from(t, 'latin1')) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((a) => Buffer.from(a)) },
  );
  return fc.array(piece, { maxLength: maxPieces }).map((pieces) => Buffer.concat(pieces));
}

/** Cut positions for a stream of up to `max` bytes. */
export function cuts(max = 400): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: 0, max }), { maxLength: 25 });
}
