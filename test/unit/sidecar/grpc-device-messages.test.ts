import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  COMMAND_OPS,
  commandErrorResponse,
  commandReplyResponse,
  type DeviceCommandMessage,
  type DeviceRequestMessage,
  eventResponse,
  EVENT_TYPES,
  openedResponse,
  protoTimestamp,
  toDeviceCommand,
} from '../../../sidecar/grpc-device-messages';
import { DeviceMeshError, UnsupportedError } from '../../../src/errors';
import { messageType, OBJECT_OPTIONS, protobufRoot } from '../../../src/proto/load';
import type { Mapping, Timestamp } from '../../../src/proto/types';
import { CommandOp } from '../../../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../../../src/socket-plane/device-event';

/** Through the wire format and back, as grpc-js with proto-loader would carry it. */
function overTheWire(typeName: string, value: object): Record<string, unknown> {
  const type = messageType(typeName);
  return type.toObject(type.decode(type.encode(type.fromObject(value)).finish()), OBJECT_OPTIONS);
}

function command(op: string | number, target = '17'): DeviceCommandMessage {
  return { requestId: 7, op, target, value: 1, data: Buffer.from([1, 2]) };
}

function assertInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof DeviceMeshError && err.code === 'INVALID_ARGUMENT' && pattern.test(err.message));
}

describe('sidecar: gRPC device messages', () => {
  it('mirrors CommandOp and DeviceEventType in the proto, name for name and number for number', () => {
    for (const [enumName, tsEnum, names] of [
      ['CommandOp', CommandOp, COMMAND_OPS],
      ['DeviceEventType', DeviceEventType, EVENT_TYPES],
    ] as const) {
      const protoValues = protobufRoot().lookupEnum(`devicemesh.v1.${enumName}`).values;
      const tsValues = Object.values(tsEnum).filter((v) => typeof v === 'number');
      assert.equal(names.size, tsValues.length);
      assert.equal(Object.keys(protoValues).length, tsValues.length + 1, `${enumName}: the proto has values TypeScript lacks`);
      for (const [name, value] of names) assert.equal(protoValues[name], value, `${enumName} ${name}`);
    }
    assert.equal(COMMAND_OPS.get('COMMAND_OP_HID_GET_FEATURE'), CommandOp.HidGetFeature);
    assert.equal(EVENT_TYPES.get('DEVICE_EVENT_TYPE_MODEM_LINES'), DeviceEventType.ModemLines);
  });

  it('turns a decoded command request into a socket-plane command', () => {
    const decoded = overTheWire('devicemesh.v1.DeviceRequest', { command: command('COMMAND_OP_GPIO_SET') }) as DeviceRequestMessage;
    assert.equal(decoded.request, 'command');
    if (decoded.request !== 'command') return;
    assert.deepEqual(toDeviceCommand(decoded.command), { op: CommandOp.GpioSet, target: '17', value: 1, data: Buffer.from([1, 2]) });
  });

  it('refuses unspecified, unknown and misspelt ops and over-long targets with INVALID_ARGUMENT', () => {
    assertInvalid(() => toDeviceCommand(command('COMMAND_OP_UNSPECIFIED')), /^command 7: op COMMAND_OP_UNSPECIFIED is not a device operation$/);
    // A value newer than this proto arrives as its number.
    const unknown = overTheWire('devicemesh.v1.DeviceCommand', { ...command(0), op: 99 }) as unknown as DeviceCommandMessage;
    assert.equal(unknown.op, 99);
    assertInvalid(() => toDeviceCommand(unknown), /op 99 is not/);
    assertInvalid(() => toDeviceCommand(command('GPIO_SET')), /op GPIO_SET is not/);
    assertInvalid(() => toDeviceCommand(command('COMMAND_OP_GPIO_GET', 'é'.repeat(128))), /target is longer than 255 bytes/);
    assert.equal(toDeviceCommand(command('COMMAND_OP_GPIO_GET', 'é'.repeat(127) + 'x')).target.length, 128);
  });

  it('answers a command with its result, or its error with the devicemesh code', () => {
    const ok = overTheWire('devicemesh.v1.DeviceResponse', commandReplyResponse(3, { value: 2.5, data: Buffer.from('V') }));
    assert.equal(ok.response, 'commandResult');
    assert.deepEqual(ok.commandResult, { requestId: 3, ok: true, value: 2.5, data: Buffer.from('V'), error: null });
    const unsupported = new UnsupportedError('GPIO_SET on a serial port');
    const failed = overTheWire('devicemesh.v1.DeviceResponse', commandErrorResponse(4, unsupported));
    assert.deepEqual(failed.commandResult, {
      requestId: 4,
      ok: false,
      value: 0,
      data: Buffer.alloc(0),
      error: { code: 'UNIMPLEMENTED', message: 'GPIO_SET on a serial port' },
    });
    const internal = commandErrorResponse(5, new Error('a bug'));
    assert.ok('commandResult' in internal);
    assert.deepEqual(internal.commandResult.error, { code: 'INTERNAL', message: 'a bug' });
  });

  it('says which device a session opened', () => {
    const mapping = { id: 'm1', physicalId: 'gw1/usb-1', kind: 'DEVICE_KIND_GPIO' } as Mapping;
    assert.deepEqual(overTheWire('devicemesh.v1.DeviceResponse', openedResponse(mapping)), {
      response: 'opened',
      opened: { mappingId: 'm1', device: 'gw1/usb-1', kind: 'DEVICE_KIND_GPIO' },
    });
  });

  it('carries every event through the proto unchanged, its time to the microsecond', () => {
    const events = fc.record({
      type: fc.constantFrom(...EVENT_TYPES.values()),
      timestampMs: fc.double({ min: 0, max: 4e12, noNaN: true }),
      source: fc.string({ maxLength: 40 }),
      value: fc.double({ noNaN: true }),
      data: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    });
    fc.assert(
      fc.property(events, (event: DeviceEvent) => {
        const decoded = overTheWire('devicemesh.v1.DeviceResponse', eventResponse(event));
        const got = decoded.event as { type: string; timestamp: Timestamp; source: string; value: number; data: Buffer };
        assert.equal(EVENT_TYPES.get(got.type), event.type);
        assert.equal(got.source, event.source);
        assert.ok(Object.is(got.value, event.value));
        assert.ok(got.data.equals(event.data));
        const { seconds, nanos } = got.timestamp;
        assert.ok(Number.isInteger(nanos) && nanos >= 0 && nanos < 1e9 && nanos % 1000 === 0, `nanos ${nanos}`);
        // Half a microsecond of rounding, plus the double's own resolution at this magnitude.
        const ms = Number(seconds) * 1000 + nanos / 1e6;
        assert.ok(Math.abs(ms - event.timestampMs) <= 0.001, `${seconds}.${nanos} for ${event.timestampMs}`);
      }),
    );
  });

  it('rounds timestamps to the microsecond, carrying into the seconds and below the epoch', () => {
    assert.deepEqual(protoTimestamp(1_700_000_000_123.456), { seconds: '1700000000', nanos: 123_456_000 });
    assert.deepEqual(protoTimestamp(1_999.9999), { seconds: '2', nanos: 0 });
    assert.deepEqual(protoTimestamp(-1.5), { seconds: '-1', nanos: 998_500_000 });
  });
});
