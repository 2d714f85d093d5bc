import { type DeviceMeshError, TimeoutError } from '../../src/errors';
import { isReadFunction, ModbusException, type ModbusExceptionCode } from '../../src/modbus/exception-codes';
import { encodeMbap, MBAP_HEADER_BYTES, mbapException, type MbapHeader, readMbap } from '../../src/modbus/mbap';
import { MbapSplitter } from '../../src/modbus/mbap-splitter';
import { checkRtu, encodeRtu, MIN_RTU_FRAME_BYTES } from '../../src/modbus/rtu-frame';
import type { RtuTiming } from '../../src/modbus/silent-interval';
import type { Counter, Histogram, Stats } from '../../src/telemetry/stats';
import type { CommandAccess, CommandCodec, CommandSplitter, PreparedCommand } from './command-codec';
import type { QueueTimers } from './command-queue';
import { SilentIntervalWriter } from './modbus-silent-interval';
import type { ResponseRule } from './response-framer';

/** Unit 0 is every unit: a broadcast, which no unit answers. */
const BROADCAST_UNIT = 0;
/** After a broadcast the bus is left alone this long, for the units to act on it (the serial line spec's turnaround delay, 100–200 ms). */
export const BROADCAST_TURNAROUND_MS = 100;

interface UnitMetrics {
  requests: Counter;
  latency: Histogram;
}

export interface ModbusRtuCodecOptions {
  device: string;
  timing: RtuTiming;
  stats: Stats;
  write: (bytes: Buffer) => void;
  now: () => number;
  timers: QueueTimers;
}

/**
 * Modbus TCP consumers, a Modbus RTU device: each consumer's MBAP request becomes an RTU frame (unit
 * id, PDU, CRC-16) written after the silent interval, and the device's frame, once its CRC, unit and
 * function code check out, goes back under the request's transaction id. What a real gateway would
 * answer with an exception gets that exception (0x0A no path: unit not allowed, device gone, queue
 * full; 0x0B no answer: timeout, CRC error, a frame that does not fit; 0x01: a read-only binding's
 * write), counted per unit with the reason; device bytes no request asked for are dropped and counted.
 */
export class ModbusRtuCodec implements CommandCodec {
  readonly checksAccess = true;
  readonly rule: ResponseRule;
  private readonly writer: SilentIntervalWriter;
  private readonly units = new Map<number, UnitMetrics>();
  private readonly malformed: Counter;
  private readonly discarded: Counter;

  constructor(private readonly options: ModbusRtuCodecOptions) {
    this.rule = { kind: 'modbusRtu', gapMs: options.timing.silentMs };
    this.writer = new SilentIntervalWriter(options.timing, options.write, options.now, options.timers);
    this.malformed = options.stats.counter('modbus_malformed_requests', { device: options.device });
    this.discarded = options.stats.counter('modbus_discarded_bytes', { device: options.device });
  }

  splitter(): CommandSplitter {
    const splitter = new MbapSplitter();
    return {
      push: (chunk: Buffer): Buffer[] => {
        try {
          return splitter.push(chunk);
        } catch (err) {
          this.malformed.add(1);
          throw err;
        }
      },
    };
  }

  prepare(request: Buffer, access: CommandAccess): PreparedCommand {
    const header = readMbap(request);
    this.unit(header.unitId).requests.add(1);
    if (access.units.length > 0 && !access.units.includes(header.unitId)) {
      return { answer: this.exception(header, ModbusException.GatewayPathUnavailable, 'unit_not_allowed') };
    }
    if (access.readOnly && !isReadFunction(header.functionCode)) {
      return { answer: this.exception(header, ModbusException.IllegalFunction, 'read_only') };
    }
    const frame = encodeRtu(header.unitId, request, MBAP_HEADER_BYTES, request.length);
    if (header.unitId !== BROADCAST_UNIT) return { write: frame };
    return { write: frame, answerlessMs: this.options.timing.silentMs + this.writer.wireMs(frame.length) + BROADCAST_TURNAROUND_MS };
  }

  answered(request: Buffer, response: Buffer, seconds: number): Buffer {
    const header = readMbap(request);
    this.unit(header.unitId).latency.observe(seconds);
    if (header.unitId === BROADCAST_UNIT) {
      this.discarded.add(response.length);
      return Buffer.alloc(0);
    }
    try {
      checkRtu(response);
    } catch {
      const reason = response.length < MIN_RTU_FRAME_BYTES ? 'short_frame' : 'crc';
      return this.exception(header, ModbusException.GatewayTargetFailed, reason);
    }
    if (response[0] !== header.unitId) return this.exception(header, ModbusException.GatewayTargetFailed, 'wrong_unit');
    if (((response[1] as number) & 0x7f) !== header.functionCode) {
      return this.exception(header, ModbusException.GatewayTargetFailed, 'wrong_function');
    }
    return encodeMbap(header.transactionId, header.unitId, response, 1, response.length - 2);
  }

  failed(request: Buffer, err: DeviceMeshError, seconds: number): Buffer {
    const header = readMbap(request);
    this.unit(header.unitId).latency.observe(seconds);
    if (header.unitId === BROADCAST_UNIT) return Buffer.alloc(0);
    if (err instanceof TimeoutError) return this.exception(header, ModbusException.GatewayTargetFailed, 'timeout');
    return this.exception(header, ModbusException.GatewayPathUnavailable, err.code.toLowerCase());
  }

  dropsUnsolicited(chunk: Buffer): boolean {
    this.discarded.add(chunk.length);
    return true;
  }

  heard(): void {
    this.writer.heard();
  }

  write(bytes: Buffer): void {
    this.writer.write(bytes);
  }

  private exception(header: MbapHeader, code: ModbusExceptionCode, reason: string): Buffer {
    this.options.stats.add('modbus_exceptions', 1, { device: this.options.device, unit: String(header.unitId), code: `0x${code.toString(16).padStart(2, '0')}`, reason });
    return mbapException(header, code);
  }

  private unit(id: number): UnitMetrics {
    let metrics = this.units.get(id);
    if (metrics === undefined) {
      const labels = { device: this.options.device, unit: String(id) };
      metrics = { requests: this.options.stats.counter('modbus_requests', labels), latency: this.options.stats.histogram('modbus_unit_seconds', labels) };
      this.units.set(id, metrics);
    }
    return metrics;
  }
}
