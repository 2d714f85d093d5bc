import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import { escapeIac } from '../../../src/rfc2217/iac-escape';
import { DO, DONT, IAC, SB, SE, type TelnetVerb, WILL, WONT } from '../../../src/rfc2217/telnet-codes';
import { negotiation, subnegotiation } from '../../../src/rfc2217/telnet-frames';
import { MAX_SUBNEGOTIATION, type TelnetItem, TelnetParser } from '../../../src/rfc2217/telnet-parser';

/** The wire form of an item, as a peer would send it. */
function encode(item: TelnetItem): Buffer {
  switch (item.kind) {
    case 'data':
      return escapeIac(item.data);
    case 'negotiate':
      return negotiation(item.verb, item.option);
    case 'subnegotiation':
      return subnegotiation(item.option, item.payload);
    case 'command':
      return Buffer.from([IAC, item.code]);
    case 'error':
      throw new Error('errors have no wire form');
  }
}

/** Adjacent data runs joined, empty ones dropped, buffers copied: how items compare. */
function normalize(items: TelnetItem[]): unknown[] {
  const out: unknown[] = [];
  for (const item of items) {
    const last = out[out.length - 1] as { kind: string; data: Buffer } | undefined;
    if (item.kind === 'data') {
      if (item.data.length === 0) continue;
      if (last?.kind === 'data') last.data = Buffer.concat([last.data, item.data]);
      else out.push({ kind: 'data', data: Buffer.from(item.data) });
    } else if (item.kind === 'error') out.push({ kind: 'error', message: item.error.message });
    else out.push(item);
  }
  return out;
}

/** Feeds `wire` in pieces cut at `cuts` (fractions of its length). */
function parseSplit(wire: Buffer, cuts: number[]): TelnetItem[] {
  const parser = new TelnetParser();
  const at = [...new Set(cuts.map((c) => Math.floor(c * wire.length)))].sort((a, b) => a - b);
  const items: TelnetItem[] = [];
  let from = 0;
  for (const to of [...at, wire.length]) {
    items.push(...parser.push(wire.subarray(from, to)));
    from = to;
  }
  return items;
}

const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const verb = fc.constantFrom<TelnetVerb>(WILL, WONT, DO, DONT);
const plainCommand = fc.integer({ min: 0, max: 255 }).filter((c) => c !== IAC && c !== SB && ![WILL, WONT, DO, DONT].includes(c));
const item: fc.Arbitrary<TelnetItem> = fc.oneof(
  { weight: 4, arbitrary: bytes(64).map((data): TelnetItem => ({ kind: 'data', data })) },
  { weight: 2, arbitrary: fc.record({ verb, option: fc.integer({ min: 0, max: 255 }) }).map((r): TelnetItem => ({ kind: 'negotiate', ...r })) },
  {
    weight: 2,
    arbitrary: fc
      .record({ option: fc.integer({ min: 0, max: 255 }), payload: bytes(MAX_SUBNEGOTIATION - 1) })
      .map((r): TelnetItem => ({ kind: 'subnegotiation', ...r })),
  },
  { weight: 1, arbitrary: plainCommand.map((code): TelnetItem => ({ kind: 'command', code })) },
);
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 });

describe('rfc2217: Telnet parser', () => {
  it('reads back any sequence of items, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(item, { maxLength: 20 }), cuts, (items, at) => {
        const wire = Buffer.concat(items.map(encode));
        assert.deepEqual(normalize(parseSplit(wire, at)), normalize(items));
      }),
      { numRuns: 1000 },
    );
  });

  it('fed one byte at a time gives what one push gives', () => {
    fc.assert(
      fc.property(bytes(300), (wire) => {
        const parser = new TelnetParser();
        const oneByOne = [...wire].flatMap((b) => parser.push(Buffer.from([b])));
        assert.deepEqual(normalize(oneByOne), normalize(new TelnetParser().push(wire)));
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on garbage; its only errors are ProtocolError items', () => {
    const framing = fc.constantFrom(Buffer.from([IAC]), Buffer.from([IAC, SB]), Buffer.from([IAC, SE]));
    const garbage = fc.array(fc.oneof(bytes(40), framing), { maxLength: 30 });
    fc.assert(
      fc.property(garbage, cuts, (pieces, at) => {
        for (const got of parseSplit(Buffer.concat(pieces), at)) {
          if (got.kind === 'error') assert.ok(got.error instanceof ProtocolError);
          if (got.kind === 'subnegotiation') assert.ok(got.payload.length < MAX_SUBNEGOTIATION);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('hands a data run out as one view of the chunk, unescaped in place', () => {
    const chunk = Buffer.from([1, 2, IAC, IAC, 3, IAC, IAC, IAC, IAC, 4, IAC, 0xf1, 5]);
    const items = new TelnetParser().push(chunk);
    assert.deepEqual(normalize(items), [
      { kind: 'data', data: Buffer.from([1, 2, IAC, 3, IAC, IAC, 4]) },
      { kind: 'command', code: 0xf1 },
      { kind: 'data', data: Buffer.from([5]) },
    ]);
    assert.equal(items.length, 3);
    for (const got of items) if (got.kind === 'data') assert.equal(got.data.buffer, chunk.buffer);
  });

  it('joins an IAC IAC split across chunks into one 0xFF', () => {
    const parser = new TelnetParser();
    assert.deepEqual(normalize(parser.push(Buffer.from([0x41, IAC]))), [{ kind: 'data', data: Buffer.from([0x41]) }]);
    assert.deepEqual(normalize(parser.push(Buffer.from([IAC]))), [{ kind: 'data', data: Buffer.from([IAC]) }]);
    assert.deepEqual(normalize(parser.push(Buffer.from([0x42]))), [{ kind: 'data', data: Buffer.from([0x42]) }]);
  });

  it('reports an oversized subnegotiation once, skips it and carries on', () => {
    const parser = new TelnetParser();
    const long = Buffer.concat([Buffer.from([IAC, SB, 44]), Buffer.alloc(MAX_SUBNEGOTIATION + 10, 7), Buffer.from([IAC, SE, 0x41])]);
    assert.deepEqual(normalize(parser.push(long)), [
      { kind: 'error', message: `subnegotiation longer than ${MAX_SUBNEGOTIATION} bytes` },
      { kind: 'data', data: Buffer.from('A') },
    ]);
  });

  it('reports a subnegotiation cut short by another command, then reads that command', () => {
    const items = new TelnetParser().push(Buffer.from([IAC, SB, 44, 1, 0, IAC, DO, 3, 0x41]));
    assert.deepEqual(normalize(items), [
      { kind: 'error', message: 'subnegotiation truncated by IAC 253' },
      { kind: 'negotiate', verb: DO, option: 3 },
      { kind: 'data', data: Buffer.from('A') },
    ]);
  });

  it('reports an empty subnegotiation and takes a stray SE as a command', () => {
    assert.deepEqual(normalize(new TelnetParser().push(Buffer.from([IAC, SB, IAC, SE, IAC, SE]))), [
      { kind: 'error', message: 'empty subnegotiation (IAC SB IAC SE)' },
      { kind: 'command', code: SE },
    ]);
  });

  it('says when it is inside a subnegotiation, oversized or not, until its IAC SE', () => {
    const parser = new TelnetParser();
    assert.equal(parser.inSubnegotiation, false);
    parser.push(Buffer.from([IAC, SB, 44, 1, 0]));
    assert.equal(parser.inSubnegotiation, true);
    parser.push(Buffer.alloc(MAX_SUBNEGOTIATION * 2, 7));
    assert.equal(parser.inSubnegotiation, true, 'still inside while skipping an oversized one');
    parser.push(Buffer.from([IAC]));
    assert.equal(parser.inSubnegotiation, true);
    parser.push(Buffer.from([SE, 0x41]));
    assert.equal(parser.inSubnegotiation, false);
  });
});

