import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { DO, DONT, OPT_BINARY, OPT_COM_PORT, OPT_ECHO, OPT_SGA, type TelnetVerb, WILL, WONT } from '../../../src/rfc2217/telnet-codes';
import { TelnetOptions } from '../../../src/rfc2217/telnet-options';

const OFFERED = new Set([OPT_BINARY, OPT_SGA, OPT_COM_PORT]);

describe('rfc2217: Telnet option negotiation', () => {
  it('offers WILL and DO for binary, SGA and COM-PORT-OPTION', () => {
    assert.deepEqual(new TelnetOptions(OFFERED, OFFERED).start(), [
      [WILL, 0], [WILL, 3], [WILL, 44],
      [DO, 0], [DO, 3], [DO, 44],
    ]);
  });

  it('takes the agreeing answers silently and answers a request once', () => {
    const o = new TelnetOptions(OFFERED, OFFERED);
    o.start();
    assert.equal(o.receive(DO, OPT_BINARY), undefined);
    assert.equal(o.receive(DO, OPT_BINARY), undefined, 'no answer to a state it is already in');
    assert.equal(o.enabled(OPT_COM_PORT), false);
    assert.equal(o.receive(WILL, OPT_COM_PORT), undefined);
    assert.equal(o.enabled(OPT_COM_PORT), true);
    assert.deepEqual(o.receive(WONT, OPT_COM_PORT), [DONT, OPT_COM_PORT]);
    assert.equal(o.enabled(OPT_COM_PORT), false);
    assert.equal(o.receive(WONT, OPT_COM_PORT), undefined);
    assert.deepEqual(o.receive(WILL, OPT_COM_PORT), [DO, OPT_COM_PORT]);
  });

  it('refuses unknown options and ignores their DONT/WONT', () => {
    const o = new TelnetOptions(OFFERED, OFFERED);
    o.start();
    assert.deepEqual(o.receive(DO, OPT_ECHO), [WONT, OPT_ECHO]);
    assert.deepEqual(o.receive(WILL, 200), [DONT, 200]);
    assert.equal(o.receive(DONT, OPT_ECHO), undefined);
    assert.equal(o.receive(WONT, 200), undefined);
  });

  it('a refused offer stays off without an answer (no loop)', () => {
    const o = new TelnetOptions(OFFERED, OFFERED);
    o.start();
    assert.equal(o.receive(DONT, OPT_SGA), undefined);
    assert.equal(o.receive(DONT, OPT_SGA), undefined);
  });

  it('stops answering a peer that keeps toggling an option', () => {
    const o = new TelnetOptions(OFFERED, OFFERED);
    o.start();
    let answered = 0;
    for (let i = 0; i < 100; i++) if (o.receive(i % 2 === 0 ? WONT : WILL, OPT_BINARY)) answered++;
    assert.equal(answered, 16);
    assert.equal(o.enabled(OPT_BINARY), true, 'the state still follows the peer');
  });

  it('two peers settle after a bounded exchange, whatever the other side supports', () => {
    const option = fc.integer({ min: 0, max: 50 });
    const requests = fc.array(fc.tuple(fc.constantFrom<TelnetVerb>(WILL, WONT, DO, DONT), option), { maxLength: 10 });
    fc.assert(
      fc.property(fc.uniqueArray(option, { maxLength: 5 }), fc.uniqueArray(option, { maxLength: 5 }), requests, (mine, theirs, extra) => {
        const a = new TelnetOptions(OFFERED, OFFERED);
        const b = new TelnetOptions(new Set(mine), new Set(theirs));
        const inFlight: Array<[TelnetOptions, TelnetVerb, number]> = [
          ...a.start().map(([v, opt]): [TelnetOptions, TelnetVerb, number] => [b, v, opt]),
          ...b.start().map(([v, opt]): [TelnetOptions, TelnetVerb, number] => [a, v, opt]),
          ...extra.map(([v, opt]): [TelnetOptions, TelnetVerb, number] => [a, v, opt]),
        ];
        let steps = 0;
        while (inFlight.length > 0) {
          const [to, v, opt] = inFlight.shift() as [TelnetOptions, TelnetVerb, number];
          const answer = to.receive(v, opt);
          if (answer) inFlight.push([to === a ? b : a, ...answer]);
          assert.ok(++steps < 200, 'the negotiation does not settle');
        }
      }),
      { numRuns: 500 },
    );
  });
});
