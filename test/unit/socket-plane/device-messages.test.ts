import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors';
import {
  CommandOp,
  type CommandRequest,
  type CommandResult,
  decodeCommand,
  decodeCommandResult,
  encodeCommand,
  encodeCommandResult,
} from '../../../src/socket-plane/device-command';
import { decodeDeviceEvent, type DeviceEvent, DeviceEventType, encodeDeviceEvent } from '../../../src/socket-plane/device-event';

const shortText = fc.string({ maxLength: 60, unit: 'grapheme' });
const number = fc.double({ noNaN: false });
const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));

const eventArb: fc.Arbitrary<DeviceEvent> = fc.record({
  type: fc.constantFrom(...Object.values(DeviceEventType).filter((v): v is DeviceEventType => typeof v === 'number')),
  timestampMs: fc.double({ min: 0, max: 4e12, noNaN: true }),
  source: shortText,
  value: number,
  data: bytes,
});

const commandArb: fc.Arbitrary<CommandRequest> = fc.record({
  requestId: fc.nat({ max: 0xffffffff }),
  op: fc.constantFrom(...Object.values(CommandOp).filter((v): v is CommandOp => typeof v === 'number')),
  target: shortText,
  value: number,
  data: bytes,
});

const resultArb: fc.Arbitrary<CommandResult> = fc.oneof(
  fc.record({ requestId: fc.nat({ max: 0xffffffff }), ok: fc.constant(true as const), value: number, data: bytes }),
  fc.record({
    requestId: fc.nat({ max: 0xffffffff }),
    ok: fc.constant(false as const),
    code: fc.constantFrom('DEVICE_ERROR' as const, 'UNIMPLEMENTED' as const, 'PERMISSION_DENIED' as const),
    message: shortText,
  }),
);

/** Same numbers, NaN included (deepEqual treats NaN as equal to NaN, -0 as not equal to 0). */
function roundTrips<T>(arb: fc.Arbitrary<T>, encode: (v: T) => Buffer, decode: (b: Buffer) => T): void {
  fc.assert(fc.property(arb, (v) => assert.deepStrictEqual({ ...decode(encode(v)) }, { ...v })));
}

/** Arbitrary bytes decode or throw ProtocolError, never anything else. */
function onlyProtocolErrors(decode: (b: Buffer) => unknown): void {
  fc.assert(
    fc.property(bytes, (b) => {
      try {
        decode(b);
      } catch (err) {
        assert.ok(err instanceof ProtocolError, `threw ${String(err)}`);
      }
    }),
  );
}

describe('socket plane: device events and commands (codecs)', () => {
  it('round-trips any event, command and result', () => {
    roundTrips(eventArb, encodeDeviceEvent, decodeDeviceEvent);
    roundTrips(commandArb, encodeCommand, decodeCommand);
    roundTrips(resultArb, encodeCommandResult, decodeCommandResult);
  });

  it('decodes arbitrary bytes or throws ProtocolError, never anything else', () => {
    onlyProtocolErrors(decodeDeviceEvent);
    onlyProtocolErrors(decodeCommand);
    onlyProtocolErrors(decodeCommandResult);
  });

  it('names what is wrong with a malformed payload', () => {
    assert.throws(() => decodeDeviceEvent(Buffer.alloc(5)), /shorter than its 18-byte header/);
    const event = encodeDeviceEvent({ type: DeviceEventType.GpioEdge, timestampMs: 1, source: 'line7', value: 1, data: Buffer.alloc(0) });
    assert.throws(() => decodeDeviceEvent(Buffer.concat([Buffer.from([99]), event.subarray(1)])), /unknown event type 99/);
    event.writeUInt8(200, 9);
    assert.throws(() => decodeDeviceEvent(event), /source of 200 bytes overruns/);
    const command = encodeCommand({ requestId: 1, op: CommandOp.GpioGet, target: 'x', value: 0, data: Buffer.alloc(0) });
    command.writeUInt8(77, 4);
    assert.throws(() => decodeCommand(command), /unknown command op 77/);
    const result = encodeCommandResult({ requestId: 1, ok: true, value: 0, data: Buffer.alloc(0) });
    result.writeUInt8(3, 4);
    assert.throws(() => decodeCommandResult(result), /unknown COMMAND_RESULT status 3/);
  });

  it('refuses to encode a source or target longer than 255 bytes', () => {
    assert.throws(() => encodeDeviceEvent({ type: DeviceEventType.SensorSample, timestampMs: 0, source: 'é'.repeat(128), value: 0, data: Buffer.alloc(0) }), ProtocolError);
    assert.throws(() => encodeCommand({ requestId: 0, op: CommandOp.GpioGet, target: 'x'.repeat(256), value: 0, data: Buffer.alloc(0) }), ProtocolError);
  });

  it('keeps an error result readable even when its message is not JSON', () => {
    const bad = Buffer.concat([Buffer.from([0, 0, 0, 9, 1]), Buffer.alloc(8), Buffer.from('not json')]);
    assert.deepEqual(decodeCommandResult(bad), { requestId: 9, ok: false, code: 'PROTOCOL_ERROR', message: 'unreadable error payload (8 bytes)' });
  });
});
