import { strict as assert } from 'node:assert';
import * as fc from 'fast-check';
import { ProtocolError } from '../../src/errors';
import { decodeComPortRequest } from '../../src/rfc2217/com-port-option';
import { DO, DONT, IAC, SB, SE, WILL, WONT } from '../../src/rfc2217/telnet-codes';
import { MAX_SUBNEGOTIATION, type TelnetItem, TelnetParser } from '../../src/rfc2217/telnet-parser';
import { decodesOrRefuses, fuzzParameters, suiteTimeoutMs } from './fuzz-budget';

/** Telnet-ish bytes: mostly the codes that steer the parser, so it gets past plain data. */
const telnetBytes: fc.Arbitrary<Buffer> = fc
  .array(
    fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => [b]) },
      { weight: 3, arbitrary: fc.constantFrom(IAC, SB, SE, WILL, WONT, DO, DONT, 44).map((b) => [b]) },
      { weight: 1, arbitrary: fc.constantFrom([IAC, SB, 44], [IAC, SE], [IAC, IAC], [IAC, WILL, 44]) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 * MAX_SUBNEGOTIATION }).map((n) => new Array<number>(n).fill(7)) },
    ),
    { maxLength: 200 },
  )
  .map((parts) => Buffer.from(parts.flat()));

function cut(bytes: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => (bytes.length === 0 ? 0 : o % bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  return chunks.filter((c) => c.length > 0);
}

/** Items with adjacent data joined and copied: what the stream means, whatever the split. */
function meaning(items: TelnetItem[]): unknown[] {
  const out: unknown[] = [];
  for (const item of items) {
    const last = out.at(-1) as { kind: string; data: Buffer } | undefined;
    if (item.kind === 'data' && last?.kind === 'data') last.data = Buffer.concat([last.data, item.data]);
    else if (item.kind === 'data') out.push({ kind: 'data', data: Buffer.from(item.data) });
    else if (item.kind === 'error') out.push({ kind: 'error', message: item.error.message });
    else out.push(item);
  }
  return out;
}

function parseAll(bytes: Buffer, offsets: number[]): TelnetItem[] {
  const parser = new TelnetParser();
  const items: TelnetItem[] = [];
  // The parser unescapes in place: each run parses its own copy.
  for (const chunk of cut(Buffer.from(bytes), offsets)) items.push(...parser.push(chunk));
  return items;
}

describe('fuzz: RFC 2217 / Telnet parser', function () {
  this.timeout(suiteTimeoutMs());

  it('never throws on any bytes; subnegotiations stay within the bound; broken framing is a ProtocolError item', () => {
    fc.assert(
      fc.property(telnetBytes, fc.array(fc.nat(), { maxLength: 12 }), (bytes, offsets) => {
        const items = decodesOrRefuses(() => parseAll(bytes, offsets), []).value ?? [];
        let dataBytes = 0;
        for (const item of items) {
          if (item.kind === 'data') dataBytes += item.data.length;
          if (item.kind === 'subnegotiation') assert.ok(item.payload.length < MAX_SUBNEGOTIATION);
          if (item.kind === 'error') {
            assert.ok(item.error instanceof ProtocolError);
            assert.ok(item.error.message.length > 0);
          }
        }
        assert.ok(dataBytes <= bytes.length);
      }),
      fuzzParameters(),
    );
  });

  it('means the same whatever the split of the bytes', () => {
    fc.assert(
      fc.property(telnetBytes, fc.array(fc.nat(), { maxLength: 12 }), (bytes, offsets) => {
        assert.deepEqual(meaning(parseAll(bytes, offsets)), meaning(parseAll(bytes, [])));
      }),
      fuzzParameters(),
    );
  });

  it('COM-PORT-OPTION requests: decoded or a ProtocolError, from any subnegotiation payload', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: MAX_SUBNEGOTIATION }), (payload) => {
        const request = decodesOrRefuses(() => decodeComPortRequest(Buffer.from(payload)), [ProtocolError]).value;
        if (request) assert.ok(Number.isFinite(request.value) && request.value >= 0);
      }),
      fuzzParameters(),
    );
  });
});
