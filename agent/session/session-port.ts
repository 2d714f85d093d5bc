import { Duplex } from 'node:stream';
import { type Context, ROOT_CONTEXT, SpanStatusCode } from '@opentelemetry/api';
import { type DeviceMeshError, errorCode, errorMessage } from '../../src/errors';
import type { Mapping } from '../../src/proto/types';
import type { ErrorPayload } from '../../src/socket-plane/control-messages';
import { CommandOp, type CommandReply, type CommandRequest } from '../../src/socket-plane/device-command';
import type { DeviceEvent } from '../../src/socket-plane/device-event';
import { pipeSession } from '../../src/socket-plane/pipe';
import type { Session } from '../../src/socket-plane/session';
import { bindingLabels } from '../../src/telemetry/binding-labels';
import type { Counter, Stats } from '../../src/telemetry/stats';
import { contextFromTraceparent, meshTracer } from '../../src/telemetry/trace-context';
import type { AccessMember, WriteCallback } from '../access/device-access';
import type { CommandAccess } from '../exchange/command-codec';
import type { BindingLimits } from '../limits/binding-limits';
import type { LimitGate } from '../limits/limit-gate';
import { OutputPacer } from '../limits/output-pacer';

/** The buffer of each session's adapter, per direction. */
export const PORT_HIGH_WATER_MARK = 64 * 1024;

/** Where a session port hands what its session does: the next stage toward the device. */
export interface SessionLane {
  /** The session's bytes, toward the device; the callback (the session's credit) waits for it. */
  write(port: SessionPort, chunk: Buffer, callback: WriteCallback): void;
  /** The session reads again: the device may resume. */
  resume(port: SessionPort): void;
  /** The session ended: it leaves the device. */
  leave(port: SessionPort): void;
  /** A control command of the session. */
  execute(port: SessionPort, command: CommandRequest): Promise<CommandReply>;
}

/**
 * One session's view of a shared device, as a Duplex so pipeSession() joins it to the socket-plane
 * session: reads are the device's output (delivered by the access strategy, paced in slow mode by
 * the binding's bucket), writes go down the lane to the device. Ending or destroying it only takes
 * this session off the device; the device stays open for the others.
 */
export class SessionPort extends Duplex implements AccessMember {
  private static nextKey = 1;
  /** Unique per session on this agent: the exchange's consumer key. */
  readonly key: string;
  readonly mappingId: string;
  readonly priority: number;
  readonly weight: number;
  readonly workloadId: string;
  readonly readOnly: boolean;
  readonly access: CommandAccess;
  readonly pinSerial: boolean;
  readonly spanAttributes: Readonly<Record<string, string>>;
  /** The sidecar's trace of this session (from its OPEN), once attached. */
  traceContext: Context = ROOT_CONTEXT;
  /** A framed capture: whether this session has had the stream header (see fanOutFrame). */
  primed = false;
  readonly framesDropped: Counter;
  readonly bytesToDevice: Counter;
  readonly writesRefused: Counter;
  private session: Session | undefined;
  private readonly bytesFromDevice: Counter;
  /** Device output to this session, at the binding's rate in slow mode. */
  private readonly pacer: OutputPacer;

  constructor(
    private readonly lane: SessionLane,
    mapping: Mapping,
    readonly limits: BindingLimits,
    readonly gate: LimitGate,
    stats: Stats,
  ) {
    super({ readableHighWaterMark: PORT_HIGH_WATER_MARK, writableHighWaterMark: PORT_HIGH_WATER_MARK });
    this.key = `${mapping.id}#${SessionPort.nextKey++}`;
    this.mappingId = mapping.id;
    this.priority = mapping.policy?.priority ?? 0;
    this.weight = mapping.policy?.weight || 1;
    this.pacer = new OutputPacer({
      bucket: limits.bytes,
      drop: () => limits.drop,
      release: (chunk) => void this.push(chunk),
      throttled: () => limits.markThrottled(),
      drained: () => {
        if (this.readableLength < this.readableHighWaterMark) lane.resume(this);
      },
      highWaterMark: PORT_HIGH_WATER_MARK,
    });
    this.workloadId = mapping.workloadId;
    this.readOnly = mapping.policy?.access === 'ACCESS_READ_ONLY';
    this.access = { readOnly: this.readOnly, units: mapping.policy?.units ?? [] };
    this.pinSerial = mapping.policy?.pinSerial === true;
    this.spanAttributes = { 'devicemesh.binding': mapping.binding, 'devicemesh.mapping': mapping.id, 'devicemesh.workload': mapping.workloadId };
    this.bytesFromDevice = stats.counter('bytes_from_device', bindingLabels(mapping));
    this.bytesToDevice = stats.counter('bytes_to_device', bindingLabels(mapping));
    this.writesRefused = stats.counter('writes_refused', { mapping: mapping.id, reason: 'read_only' });
    this.framesDropped = stats.counter('media_frames_dropped', { ...bindingLabels(mapping), reason: 'slow_consumer' });
  }

  /**
   * Joins the accepted session to the device. `traceparent` (from the OPEN) makes this session's
   * command spans children of the sidecar's span.
   */
  attach(session: Session, traceparent?: string): void {
    this.session = session;
    this.traceContext = contextFromTraceparent(traceparent);
    pipeSession(session, this);
    session.on('command', (command: CommandRequest) => {
      const op = CommandOp[command.op] ?? String(command.op);
      const span = meshTracer().startSpan('device control command', { attributes: { ...this.spanAttributes, 'devicemesh.op': op } }, this.traceContext);
      this.lane.execute(this, command).then(
        (reply) => {
          span.end();
          session.respond({ requestId: command.requestId, ok: true, value: reply.value, data: reply.data });
        },
        (err: unknown) => {
          const code = errorCode(err, 'DEVICE_ERROR');
          span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
          span.end();
          session.respond({ requestId: command.requestId, ok: false, code, message: errorMessage(err) });
        },
      );
    });
  }

  /** @returns false when the event was dropped because the session's peer is not reading. */
  sendEvent(event: DeviceEvent): boolean {
    // Before its OPEN is accepted a session has no consumer yet: nothing is dropped.
    return this.session ? this.session.sendEvent(event) : true;
  }

  /** Ends the session with `err` (the client sees it as a RESET) and leaves the device. */
  fail(err: ErrorPayload): void {
    const session = this.session;
    if (session && !session.closed) session.reset(err);
    this.destroy();
  }

  refuse(err: DeviceMeshError): void {
    this.fail({ code: err.code, message: err.message });
  }

  /** @returns false when this port's buffer (or the output its rate limit holds back) is full and the device should pause. */
  deliver(chunk: Buffer): boolean {
    this.bytesFromDevice.add(chunk.length);
    this.limits.meter.record(chunk.length);
    return this.pacer.offer(chunk) && this.readableLength < this.readableHighWaterMark;
  }

  override _read(): void {
    // Output held back by the rate limit resumes the device once it drains (the pacer's `drained`).
    if (!this.pacer.saturated) this.lane.resume(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.lane.write(this, chunk, callback);
  }

  /**
   * The client finished writing: a device conversation has no end of its own to wait for, so the
   * session ends here, once the last bytes went to the device.
   */
  override _final(callback: WriteCallback): void {
    this.pacer.close();
    this.lane.leave(this);
    this.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: WriteCallback): void {
    this.pacer.close();
    this.lane.leave(this);
    callback(err);
  }
}
