import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import { ComPort, decodeComPortRequest, encodeComPortAnswer, ModemState, modemDeltas, modemState } from '../../../src/rfc2217/com-port-option';
import { IAC, OPT_COM_PORT, SB, SE } from '../../../src/rfc2217/telnet-codes';
import { TelnetParser } from '../../../src/rfc2217/telnet-parser';
import { ModemLine } from '../../../src/socket-plane/device-event';

/** What a client reads from an answer: the subnegotiation payload after the option byte. */
function readAnswer(wire: Buffer): Buffer {
  const items = new TelnetParser().push(wire);
  assert.equal(items.length, 1);
  const [item] = items;
  assert.ok(item?.kind === 'subnegotiation' && item.option === OPT_COM_PORT, JSON.stringify(items));
  return item.payload;
}

describe('rfc2217: COM-PORT-OPTION codec', () => {
  it('decodes each client request', () => {
    const cases: Array<[number[], ComPort, number]> = [
      [[1, 0, 0, 0x25, 0x80], ComPort.SetBaudRate, 9600],
      [[1, 0xff, 0xff, 0xff, 0xff], ComPort.SetBaudRate, 0xffffffff],
      [[1, 0, 0, 0, 0], ComPort.SetBaudRate, 0],
      [[2, 7], ComPort.SetDataSize, 7],
      [[3, 3], ComPort.SetParity, 3],
      [[4, 2], ComPort.SetStopSize, 2],
      [[5, 11], ComPort.SetControl, 11],
      [[7], ComPort.NotifyModemState, 0],
      [[8], ComPort.FlowControlSuspend, 0],
      [[9], ComPort.FlowControlResume, 0],
      [[10, 0xff], ComPort.SetLineStateMask, 255],
      [[11, 0x80], ComPort.SetModemStateMask, 128],
      [[12, 1], ComPort.PurgeData, 1],
    ];
    for (const [payload, command, value] of cases) {
      const got = decodeComPortRequest(Buffer.from(payload));
      assert.deepEqual([got.command, got.value], [command, value], `payload ${payload.join(',')}`);
    }
    assert.equal(decodeComPortRequest(Buffer.from('\x00pyserial', 'latin1')).text.toString(), 'pyserial');
  });

  it('refuses unknown commands and wrong value lengths with ProtocolError', () => {
    const bad = [[], [13], [99], [101, 0, 0, 0x25, 0x80], [1, 0, 0x25, 0x80], [1, 0, 0, 0, 0x25, 0x80], [2], [2, 7, 7], [8, 1], [12]];
    for (const payload of bad) {
      assert.throws(() => decodeComPortRequest(Buffer.from(payload)), ProtocolError, `accepted ${payload.join(',')}`);
    }
  });

  it('never throws anything but ProtocolError on arbitrary payloads', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (payload) => {
        try {
          const got = decodeComPortRequest(Buffer.from(payload));
          assert.ok(Number.isInteger(got.value) && got.value >= 0);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('answers with code + 100 and the value in the request’s width, IAC doubled', () => {
    assert.deepEqual(encodeComPortAnswer(ComPort.SetBaudRate, 9600), Buffer.from([IAC, SB, 44, 101, 0, 0, 0x25, 0x80, IAC, SE]));
    assert.deepEqual(encodeComPortAnswer(ComPort.SetModemStateMask, 255), Buffer.from([IAC, SB, 44, 111, IAC, IAC, IAC, SE]));
    assert.deepEqual(encodeComPortAnswer(ComPort.Signature, Buffer.from('dm')), Buffer.from([IAC, SB, 44, 100, 0x64, 0x6d, IAC, SE]));
    assert.throws(() => encodeComPortAnswer(ComPort.SetDataSize, 256), ProtocolError);
    assert.throws(() => encodeComPortAnswer(ComPort.SetBaudRate, 1.5), ProtocolError);
  });

  it('an answer carries back exactly the bytes of the request it applies', () => {
    const request = fc.oneof(
      fc.tuple(fc.constant(ComPort.SetBaudRate), fc.uint8Array({ minLength: 4, maxLength: 4 })),
      fc.tuple(
        fc.oneof(
          fc.constantFrom(ComPort.SetDataSize, ComPort.SetParity, ComPort.SetStopSize, ComPort.SetControl),
          fc.constantFrom(ComPort.SetLineStateMask, ComPort.SetModemStateMask, ComPort.PurgeData),
        ),
        fc.uint8Array({ minLength: 1, maxLength: 1 }),
      ),
    );
    fc.assert(
      fc.property(request, ([command, value]) => {
        const decoded = decodeComPortRequest(Buffer.from([command, ...value]));
        assert.deepEqual(readAnswer(encodeComPortAnswer(command, decoded.value)), Buffer.from([command + 100, ...value]));
      }),
      { numRuns: 1000 },
    );
  });

  it('maps modem lines to NOTIFY-MODEMSTATE bits and deltas', () => {
    assert.equal(modemState(ModemLine.cts | ModemLine.dsr | ModemLine.dcd | ModemLine.ri), 0xf0);
    assert.equal(modemState(ModemLine.dcd), ModemState.cd);
    assert.equal(modemState(0), 0);
    assert.equal(modemDeltas(ModemState.cts, ModemState.cts | ModemState.cd), ModemState.deltaCd);
    assert.equal(modemDeltas(ModemState.dsr | ModemState.ri, ModemState.cts), ModemState.deltaDsr | ModemState.trailingRi | ModemState.deltaCts);
    assert.equal(modemDeltas(0, ModemState.ri), 0, 'a rising RI is not a trailing edge');
  });
});
