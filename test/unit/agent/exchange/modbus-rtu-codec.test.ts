import { strict as assert } from 'node:assert';
import { CommandQueue } from '../../../../agent/exchange/command-queue';
import { PriorityScheduler } from '../../../../agent/exchange/command-scheduler';
import { BROADCAST_TURNAROUND_MS, ModbusRtuCodec } from '../../../../agent/exchange/modbus-rtu-codec';
import { type DeviceMeshError, ProtocolError, ResourceExhaustedError, UnavailableError } from '../../../../src/errors';
import { encodeMbap } from '../../../../src/modbus/mbap';
import { encodeRtu } from '../../../../src/modbus/rtu-frame';
import { Stats } from '../../../../src/telemetry/stats';
import { settle, VirtualTime } from './virtual-time';

const TIMING = { charMs: 11 / 9.6, silentMs: 3.5 * (11 / 9.6) };
const ANY = { readOnly: false, units: [] };

interface Rig {
  codec: ModbusRtuCodec;
  queue: CommandQueue;
  time: VirtualTime;
  stats: Stats;
  /** Frames written to the device, with the time of each. */
  wire: { at: number; frame: Buffer }[];
  /** What the consumer got back. */
  replies: Buffer[];
  /** Device bytes (from the device's side: the codec hears them and the queue frames them). */
  device(bytes: Buffer): void;
  /** A consumer's MBAP bytes, as the exchange would run them. */
  send(adu: Buffer, access?: { readOnly: boolean; units: number[] }): void;
}

function rig(): Rig {
  const time = new VirtualTime();
  const stats = new Stats();
  const wire: { at: number; frame: Buffer }[] = [];
  const replies: Buffer[] = [];
  const codec = new ModbusRtuCodec({ device: 'bus0', timing: TIMING, stats, write: (frame) => wire.push({ at: time.now(), frame }), now: time.now, timers: time });
  const queue = new CommandQueue({
    depth: 8,
    perConsumer: 4,
    rule: codec.rule,
    maxResponseBytes: 512,
    scheduler: new PriorityScheduler(),
    write: (request) => codec.write(request),
    unsolicited: (chunk) => assert.ok(codec.dropsUnsolicited(chunk)),
    now: time.now,
    timers: time,
  });
  const splitter = codec.splitter();
  // As the exchange does: an empty answer (a broadcast's) sends nothing.
  const reply = (bytes: Buffer | undefined): void => {
    if (bytes !== undefined && bytes.length > 0) replies.push(bytes);
  };
  return {
    codec,
    queue,
    time,
    stats,
    wire,
    replies,
    device: (bytes) => {
      codec.heard();
      queue.onDeviceData(bytes);
    },
    send: (bytes, access = ANY) => {
      for (const request of splitter.push(bytes)) {
        const prepared = codec.prepare(request, access);
        if (prepared.answer !== undefined) {
          replies.push(prepared.answer);
          continue;
        }
        const started = time.now();
        queue
          .submit({ consumer: 'c', priority: 0, request: prepared.write, timeoutMs: 500, ...(prepared.answerlessMs === undefined ? {} : { answerlessMs: prepared.answerlessMs }) })
          .then(
            (response) => reply(codec.answered(request, response, (time.now() - started) / 1000)),
            (err: unknown) => reply(codec.failed(request, err as DeviceMeshError, (time.now() - started) / 1000)),
          );
      }
    },
  };
}

const readHolding = (tid: number, unit: number): Buffer => encodeMbap(tid, unit, Buffer.from([3, 0, 0, 0, 2]));
const twoRegisters = (unit: number): Buffer => encodeRtu(unit, Buffer.from([3, 4, 0, 1, 0, 2]));

describe('agent/exchange: Modbus RTU codec', () => {
  it('writes the RTU frame of an MBAP request and answers under its transaction id', async () => {
    const r = rig();
    r.send(readHolding(0x4242, 2));
    assert.deepEqual(r.wire.map((w) => [...w.frame]), [[...encodeRtu(2, Buffer.from([3, 0, 0, 0, 2]))]]);
    const reply = twoRegisters(2);
    // Arrives in three pieces, the last with the CRC; the length comes from the byte count.
    r.device(reply.subarray(0, 2));
    r.device(reply.subarray(2, 5));
    await settle();
    assert.equal(r.replies.length, 0);
    r.device(reply.subarray(5));
    await settle();
    assert.deepEqual(r.replies, [encodeMbap(0x4242, 2, Buffer.from([3, 4, 0, 1, 0, 2]))]);
    assert.equal(r.stats.get('modbus_requests', { device: 'bus0', unit: '2' }), 1);
  });

  it('waits the 3.5-character silent interval after the bus was last busy before each frame', async () => {
    const r = rig();
    r.send(readHolding(1, 1));
    r.send(readHolding(2, 1));
    assert.equal(r.wire.length, 1);
    r.time.advance(20);
    r.device(twoRegisters(1));
    const heardAt = r.time.now();
    await settle();
    assert.equal(r.wire.length, 1, 'the next frame waits for the silent interval');
    r.time.advance(TIMING.silentMs - 0.01);
    assert.equal(r.wire.length, 1);
    r.time.advance(0.02);
    assert.equal(r.wire.length, 2);
    assert.ok((r.wire[1]?.at ?? 0) - heardAt >= TIMING.silentMs);
  });

  it('answers a CRC error with 0x0B, counts it for the unit, and passes none of its bytes on', async () => {
    const r = rig();
    r.send(readHolding(9, 3));
    const bad = twoRegisters(3);
    bad[4] ^= 0xff;
    r.device(bad);
    await settle();
    assert.deepEqual([...(r.replies[0] ?? [])], [0, 9, 0, 0, 0, 3, 3, 0x83, 0x0b]);
    assert.equal(r.stats.get('modbus_exceptions', { device: 'bus0', unit: '3', code: '0x0b', reason: 'crc' }), 1);
  });

  it('answers a wrong unit or function code with 0x0B', async () => {
    const r = rig();
    r.send(readHolding(1, 1));
    r.device(twoRegisters(2));
    await settle();
    r.time.advance(10);
    r.send(readHolding(2, 1));
    r.time.advance(10);
    r.device(encodeRtu(1, Buffer.from([4, 2, 0, 0])));
    await settle();
    assert.deepEqual(r.replies.map((b) => [b[7], b[8]]), [[0x83, 0x0b], [0x83, 0x0b]]);
    assert.equal(r.stats.get('modbus_exceptions', { device: 'bus0', unit: '1', code: '0x0b', reason: 'wrong_unit' }), 1);
    assert.equal(r.stats.get('modbus_exceptions', { device: 'bus0', unit: '1', code: '0x0b', reason: 'wrong_function' }), 1);
  });

  it('answers a unit that does not respond with 0x0B at the timeout, and the next unit flows', async () => {
    const r = rig();
    r.send(readHolding(1, 5));
    r.send(readHolding(2, 1));
    r.time.advance(500);
    await settle();
    assert.deepEqual([...(r.replies[0] ?? [])], [0, 1, 0, 0, 0, 3, 5, 0x83, 0x0b]);
    r.time.advance(10);
    assert.equal(r.wire.length, 2);
    r.device(twoRegisters(1));
    await settle();
    assert.equal(r.replies[1]?.readUInt16BE(0), 2);
    assert.equal(r.stats.get('modbus_exceptions', { device: 'bus0', unit: '5', code: '0x0b', reason: 'timeout' }), 1);
  });

  it("passes a device's own exception response on", async () => {
    const r = rig();
    r.send(readHolding(7, 1));
    r.device(encodeRtu(1, Buffer.from([0x83, 0x02])));
    await settle();
    assert.deepEqual([...(r.replies[0] ?? [])], [0, 7, 0, 0, 0, 3, 1, 0x83, 0x02]);
  });

  it('refuses a read-only write with 0x01 and a unit outside the binding with 0x0A, the device getting nothing', () => {
    const r = rig();
    r.send(encodeMbap(1, 1, Buffer.from([6, 0, 0, 0, 9])), { readOnly: true, units: [] });
    r.send(encodeMbap(2, 4, Buffer.from([3, 0, 0, 0, 1])), { readOnly: false, units: [1, 2] });
    r.send(encodeMbap(3, 0, Buffer.from([6, 0, 0, 0, 9])), { readOnly: false, units: [1, 2] });
    assert.deepEqual(r.replies.map((b) => [b[6], b[7], b[8]]), [[1, 0x86, 0x01], [4, 0x83, 0x0a], [0, 0x86, 0x0a]]);
    assert.equal(r.wire.length, 0);
    // FC 1–4 pass a read-only binding.
    for (const fcode of [1, 2, 3, 4]) assert.ok(r.codec.prepare(encodeMbap(9, 1, Buffer.from([fcode, 0, 0, 0, 1])), { readOnly: true, units: [] }).write);
  });

  it('sends a broadcast, answers nothing, and holds the bus for the turnaround', async () => {
    const r = rig();
    r.send(encodeMbap(1, 0, Buffer.from([6, 0, 1, 0, 7])));
    r.send(readHolding(2, 1));
    assert.equal(r.wire.length, 1);
    r.time.advance(BROADCAST_TURNAROUND_MS);
    assert.equal(r.wire.length, 1, 'still in the turnaround');
    r.time.advance(TIMING.silentMs + 8 * TIMING.charMs + 1);
    await settle();
    r.time.advance(TIMING.silentMs + 1);
    assert.equal(r.wire.length, 2);
    assert.deepEqual(r.replies, []);
  });

  it('drops and counts device bytes no request asked for', () => {
    const r = rig();
    r.device(Buffer.from([1, 2, 3]));
    assert.equal(r.stats.get('modbus_discarded_bytes', { device: 'bus0' }), 3);
    assert.deepEqual(r.replies, []);
  });

  it('answers a device gone or a full queue with 0x0A', () => {
    const r = rig();
    const request = readHolding(5, 1);
    assert.deepEqual([...r.codec.failed(request, new UnavailableError('device gone'), 0)].slice(7), [0x83, 0x0a]);
    assert.deepEqual([...r.codec.failed(request, new ResourceExhaustedError('full'), 0)].slice(7), [0x83, 0x0a]);
  });

  it('counts and throws on a stream that is not MBAP', () => {
    const r = rig();
    assert.throws(() => r.send(Buffer.from('hello world\n')), ProtocolError);
    assert.equal(r.stats.get('modbus_malformed_requests', { device: 'bus0' }), 1);
  });
});
