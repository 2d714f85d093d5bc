import { Duplex } from 'node:stream';
import { type Context, ROOT_CONTEXT, SpanStatusCode } from '@opentelemetry/api';
import { DeviceError, DeviceMeshError, errorCode, errorMessage, PermissionDeniedError } from '../src/errors';
import type { Logger } from '../src/log';
import type { ErrorPayload } from '../src/socket-plane/control-messages';
import { CommandOp, type CommandReply, type CommandRequest } from '../src/socket-plane/device-command';
import { type DeviceEvent, DeviceEventType } from '../src/socket-plane/device-event';
import { pipeSession } from '../src/socket-plane/pipe';
import type { Session } from '../src/socket-plane/session';
import { bindingLabels } from '../src/telemetry/binding-labels';
import type { Counter, Stats } from '../src/telemetry/stats';
import { contextFromTraceparent, meshTracer } from '../src/telemetry/trace-context';
import type { Mapping, SharingMode } from '../src/proto/types';
import { BindingLimits } from './limits/binding-limits';
import { DeviceExchange, type ExchangeConsumer } from './exchange/device-exchange';
import { fanOutFrame, type FrameConsumer } from './frame-fanout';
import type { DeviceConfig, DeviceDriver, DeviceHandle } from './drivers/device-driver';
import type { CommandAccess } from './exchange/command-codec';
import { TokenBucket } from '../src/limits/token-bucket';
import { LimitGate } from './limits/limit-gate';
import { OutputPacer } from './limits/output-pacer';
import { RateMeter } from './limits/rate-meter';

/** The buffer of each session's adapter, per direction. */
const PORT_HIGH_WATER_MARK = 64 * 1024;

export interface DeviceSessionHostOptions {
  path: string;
  driver: DeviceDriver;
  stats: Stats;
  log: Logger;
  /** The device's configuration as read back after each open and change; {} once it is closed. */
  onConfiguration?: (configuration: Record<string, string>) => void;
}

/** The configuration a mapping asks of its device. */
export function deviceConfig(mapping: Mapping): DeviceConfig {
  return { serial: mapping.serial, settings: mapping.settings ?? {} };
}

/** Commands that change what the endpoint's configuration shows. */
const CONFIGURING_COMMANDS = new Set<CommandOp>([CommandOp.SerialConfigure, CommandOp.SerialSetLine, CommandOp.GpioSet, CommandOp.GpioSetDirection]);

/** Commands that only read: the ones a read-only mapping may send. */
const READ_ONLY_COMMANDS = new Set<CommandOp>([CommandOp.SerialGetLines, CommandOp.GpioGet, CommandOp.SensorRead, CommandOp.HidGetFeature]);

/** How long an OPEN for an exclusively held device waits for the holder to leave before it is refused. */
const EXCLUSIVE_HANDOVER_MS = 1000;

function sharingOf(mapping: Mapping): SharingMode {
  const sharing = mapping.policy?.sharing ?? 'SHARING_MODE_UNSPECIFIED';
  return sharing === 'SHARING_MODE_UNSPECIFIED' ? 'SHARING_MODE_EXCLUSIVE' : sharing;
}

function isExclusive(mapping: Mapping): boolean {
  return sharingOf(mapping) === 'SHARING_MODE_EXCLUSIVE';
}

/** Sharing modes whose consumers take turns command by command. */
function usesExchange(sharing: SharingMode): boolean {
  return sharing === 'SHARING_MODE_SHARED' || sharing === 'SHARING_MODE_TIME_SLICE';
}

/** One binding's load on its device, as the agent reports it to the control plane. */
export interface BindingLoadSample {
  mappingId: string;
  bytesPerSecond: number;
  commandsPerSecond: number;
  throttled: boolean;
  droppedBytes: number;
  droppedCommands: number;
}

/**
 * One device and the sessions using it. The device is opened (with the mapping's serial
 * configuration) for the first session and closed after the last; every byte it produces goes to
 * every session; what sessions write goes to it in order, with backpressure both ways: a session
 * that cannot keep up pauses the device, a device that cannot keep up stops the sessions' credit.
 *
 * EXCLUSIVE sharing (the default) admits one session at a time (a later OPEN is refused, or waits
 * when the policy says so). SHARED and TIME_SLICE put every session's commands through one
 * DeviceExchange (a queue and a scheduler), each response going only to its sender. BROADCAST
 * gives every session all device output and lets only the first read-write session write.
 *
 * Every byte to the device passes the binding's and the device's token buckets (gatedWrite; in
 * SHARED and TIME_SLICE the exchange charges each command), and is measured for the load reports
 * that drive the control plane's adaptive limits. In slow mode the device's output to a session
 * is paced by the same binding bucket (OutputPacer).
 *
 * The device's events go to every session on it, timestamped by the driver; commands of a
 * session go to the device, read-only mappings only for those that read.
 */
export class DeviceSessionHost {
  readonly path: string;
  private handle: DeviceHandle | undefined;
  private opening: Promise<void> | undefined;
  /** Resolves once the last handle is closed, so a reopen never races the lock it held. */
  private closing: Promise<void> = Promise.resolve();
  /** Sessions admitted, in order; the first is the one whose configuration opened the device. */
  private readonly ports: SessionPort[] = [];
  /** Ports whose buffer is full: the device stays paused while any is. */
  private readonly blocked = new Set<SessionPort>();
  /** Ports waiting for the device to drain before their write completes. */
  private readonly waitingForDrain: SessionPort[] = [];
  /** Opens waiting for every session to leave (see waitForRelease). */
  private readonly releaseWaiters = new Set<() => void>();
  /** The sharing mode of the mapping that opened the device. */
  private sharing: SharingMode = 'SHARING_MODE_EXCLUSIVE';
  /** SHARED and TIME_SLICE: the queue every session's commands go through while the device is open. */
  private exchange: DeviceExchange | undefined;
  /** Per binding, kept while the device host lives so that rates decay visibly after a session. */
  private readonly limits = new Map<string, BindingLimits>();
  /** The device's own capacity (policy.deviceBytesPerSecond), shared by all its bindings. */
  readonly deviceBucket = new TokenBucket(0, 0);
  readonly deviceMeter = new RateMeter();

  constructor(private readonly options: DeviceSessionHostOptions) {
    this.path = options.path;
    this.onDeviceData = this.onDeviceData.bind(this);
    this.onDeviceDrain = this.onDeviceDrain.bind(this);
    this.onDeviceError = this.onDeviceError.bind(this);
    this.onDeviceGone = this.onDeviceGone.bind(this);
    this.onDeviceEvent = this.onDeviceEvent.bind(this);
  }

  get isOpen(): boolean {
    return this.handle !== undefined;
  }

  get sessionCount(): number {
    return this.ports.length;
  }

  /** Workload and mapping of each admitted session, for /config_dump. */
  sessions(): Array<{ mappingId: string; workloadId: string }> {
    return this.ports.map((p) => ({ mappingId: p.mappingId, workloadId: p.workloadId }));
  }

  /**
   * Admits a session for `mapping`, opening the device if this is the first. Rejects with a
   * DeviceMeshError the client can be told: RESOURCE_EXHAUSTED when an exclusive holder has it,
   * DEVICE_ERROR when it does not open. The returned port is attached to the session once the
   * OPEN is accepted, or destroyed if it never is.
   */
  async open(mapping: Mapping): Promise<SessionPort> {
    this.options.driver.validate(deviceConfig(mapping));
    if (this.conflicts(mapping)) {
      const wait = mapping.policy?.waitWhenBusy ? Math.max(EXCLUSIVE_HANDOVER_MS, mapping.policy.commandTimeoutMs) : EXCLUSIVE_HANDOVER_MS;
      await this.waitForRelease(wait);
    }
    const holder = this.ports[0];
    if (holder && this.conflicts(mapping)) {
      throw new DeviceMeshError('RESOURCE_EXHAUSTED', `device ${this.path} is in use by ${holder.workloadId}`);
    }
    if (this.ports.length === 0) this.adoptPolicy(mapping);
    const port = new SessionPort(this, mapping, this.limitsFor(mapping), this.options.stats);
    this.ports.push(port);
    this.exchange?.add(port);
    try {
      await this.ensureOpen(mapping);
    } catch (err) {
      port.destroy();
      throw err instanceof DeviceMeshError ? err : new DeviceError(`cannot open device ${this.path}: ${errorMessage(err)}`);
    }
    if (port.destroyed) throw new DeviceError(`device ${this.path} removed`);
    return port;
  }

  private conflicts(mapping: Mapping): boolean {
    const holder = this.ports[0];
    return holder !== undefined && (holder.exclusive || isExclusive(mapping) || sharingOf(mapping) !== this.sharing);
  }

  /** The first session's mapping sets how the device is shared and its capacity until it is free again. */
  private adoptPolicy(mapping: Mapping): void {
    this.sharing = sharingOf(mapping);
    const capacity = Number(mapping.policy?.deviceBytesPerSecond ?? '0');
    this.deviceBucket.configure(capacity, capacity);
    if (usesExchange(this.sharing) && mapping.policy) {
      this.exchange?.close();
      this.exchange = new DeviceExchange({
        device: this.path,
        policy: mapping.policy,
        serial: mapping.serial,
        write: (request) => this.handle?.stream.write(request),
        deviceBucket: this.deviceBucket,
        deviceMeter: this.deviceMeter,
        stats: this.options.stats,
        log: this.options.log,
      });
    }
  }

  private limitsFor(mapping: Mapping): BindingLimits {
    let limits = this.limits.get(mapping.id);
    if (!limits) {
      limits = new BindingLimits(mapping, this.options.stats);
      this.limits.set(mapping.id, limits);
    }
    return limits;
  }

  /** A mapping's policy or adaptive limit changed: its buckets take the new rates at once. */
  retune(mapping: Mapping): void {
    this.limits.get(mapping.id)?.retune(mapping);
  }

  /** Each binding's measured load, for the control plane's adaptive limits. */
  loads(): BindingLoadSample[] {
    return [...this.limits].map(([mappingId, l]) => ({
      mappingId,
      bytesPerSecond: l.meter.rate(),
      commandsPerSecond: l.commandMeter.rate(),
      throttled: l.throttled,
      droppedBytes: l.droppedBytes.value,
      droppedCommands: l.droppedCommands.value,
    }));
  }

  /** Broadcast: the first read-write session is the one writer. */
  mayWrite(port: SessionPort): boolean {
    if (this.sharing !== 'SHARING_MODE_BROADCAST') return true;
    return this.ports.find((p) => !p.readOnly) === port;
  }

  get writerWorkload(): string | undefined {
    return this.ports.find((p) => !p.readOnly)?.workloadId;
  }

  /** The device's exchange checks read-only per request (the sessions' bytes go to it). */
  get checksAccess(): boolean {
    return this.exchange?.checksAccess === true;
  }

  /** SHARED / TIME_SLICE: a session's bytes become commands in the device's queue. */
  submit(port: SessionPort, chunk: Buffer, callback: (err?: Error | null) => void): boolean {
    const exchange = this.exchange;
    if (!exchange) return false;
    exchange.write(port.key, chunk, callback);
    return true;
  }

  /** Output for one session (a response); pauses the device while that session is full. */
  deliverTo(port: SessionPort, chunk: Buffer): void {
    if (!port.deliver(chunk)) {
      this.blocked.add(port);
      this.handle?.stream.pause();
    }
  }

  /**
   * An app that closes and at once reconnects races its own old session: the sidecar may send the
   * new OPEN before the old CLOSE. A short wait for the holder to leave tells that apart from a
   * device really in use.
   */
  private waitForRelease(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.releaseWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.releaseWaiters.add(done);
    });
  }

  /**
   * Applies a changed configuration of a mapping that has sessions on the open device; rejects
   * with the driver's reason when the device refuses it.
   * @returns false when there was nothing to apply it to.
   */
  async update(mapping: Mapping): Promise<boolean> {
    const handle = this.handle;
    if (!handle || !this.ports.some((p) => p.mappingId === mapping.id)) return false;
    try {
      await handle.update(deviceConfig(mapping));
    } finally {
      this.reportConfiguration(handle);
    }
    return true;
  }

  /**
   * Runs a session's command on the device. A read-only mapping may only read; a mapping whose
   * policy pins the serial settings gets the setting in use instead of a change.
   */
  execute(port: SessionPort, command: CommandRequest): Promise<CommandReply> {
    const handle = this.handle;
    if (!handle) return Promise.reject(new DeviceError(`device ${this.path} is not open`));
    const configure = command.op === CommandOp.SerialConfigure;
    const reads = READ_ONLY_COMMANDS.has(command.op) || (configure && command.value === 0);
    if (port.readOnly && !reads) {
      this.options.stats.add('commands_refused', 1, { mapping: port.mappingId, reason: 'read_only' });
      return Promise.reject(new PermissionDeniedError(`mapping ${port.mappingId} is read-only: ${CommandOp[command.op] ?? command.op} is not allowed`));
    }
    if (configure && port.pinSerial && command.value !== 0) {
      this.options.stats.add('serial_changes_pinned', 1, { device: this.path, setting: command.target });
      return handle.execute({ ...command, value: 0 });
    }
    if (reads || !CONFIGURING_COMMANDS.has(command.op)) return handle.execute(command);
    // An app changed the device's settings: the endpoint shows what it has now.
    return handle.execute(command).finally(() => this.reportConfiguration(handle));
  }

  /** Resets the sessions of one mapping (its binding was withdrawn or changed). */
  resetMapping(mappingId: string, err: ErrorPayload): void {
    for (const port of [...this.ports]) if (port.mappingId === mappingId) port.fail(err);
    this.limits.delete(mappingId);
  }

  /** The device is gone (unplugged, its pty closed): every session is reset. */
  deviceRemoved(): void {
    this.lose(undefined);
  }

  /** Agent shutdown: resets every session and closes the device. */
  async close(err: ErrorPayload): Promise<void> {
    for (const port of [...this.ports]) port.fail(err);
    await this.closing;
  }

  /* ---- called by SessionPort ---- */

  /** Data path: one device write per session chunk; the callback waits for 'drain' when the device is full. */
  write(port: SessionPort, chunk: Buffer, callback: (err?: Error | null) => void): void {
    const handle = this.handle;
    if (!handle) {
      callback(new DeviceError(`device ${this.path} is not open`));
      return;
    }
    if (handle.stream.write(chunk)) callback();
    else {
      port.pendingWrite = callback;
      this.waitingForDrain.push(port);
    }
  }

  /** The port's reader wants more: resume the device once no port is full. */
  unblock(port: SessionPort): void {
    if (!this.blocked.delete(port)) return;
    if (this.blocked.size === 0) this.handle?.stream.resume();
  }

  detach(port: SessionPort): void {
    const i = this.ports.indexOf(port);
    if (i < 0) return;
    this.ports.splice(i, 1);
    this.exchange?.remove(port.key);
    const w = this.waitingForDrain.indexOf(port);
    if (w >= 0) this.waitingForDrain.splice(w, 1);
    port.pendingWrite = undefined;
    this.unblock(port);
    if (this.ports.length === 0) {
      if (this.handle) this.closeDevice('last session ended');
      for (const wake of [...this.releaseWaiters]) wake();
    }
  }

  /* ---- the device ---- */

  private ensureOpen(mapping: Mapping): Promise<void> {
    if (this.handle) return Promise.resolve();
    this.opening ??= this.closing
      .then(() => this.options.driver.open(this.path, deviceConfig(mapping)))
      .then(
        (handle) => {
          this.opening = undefined;
          this.attachHandle(handle);
          this.options.log.info({ path: this.path, mapping: mapping.id }, 'device opened');
          this.reportConfiguration(handle);
          // Every admitted session gave up while it opened.
          if (this.ports.length === 0) this.closeDevice('no session left');
        },
        (err: unknown) => {
          this.opening = undefined;
          throw err;
        },
      );
    return this.opening;
  }

  private attachHandle(handle: DeviceHandle): void {
    this.handle = handle;
    const stream = handle.stream;
    stream.on('data', this.onDeviceData);
    stream.on('drain', this.onDeviceDrain);
    stream.on('error', this.onDeviceError);
    stream.on('end', this.onDeviceGone);
    stream.on('close', this.onDeviceGone);
    handle.onEvent(this.onDeviceEvent);
  }

  /** Reads the device's configuration back and reports it, unless the handle is no longer ours. */
  private reportConfiguration(handle: DeviceHandle): void {
    const report = this.options.onConfiguration;
    if (!report) return;
    handle.configuration().then(
      (configuration) => {
        if (this.handle === handle) report(configuration);
      },
      (err: unknown) => this.options.log.warn({ path: this.path, error: errorMessage(err) }, 'cannot read the device configuration back'),
    );
  }

  /** Detaches from the handle; its later events (our own close included) are not ours. */
  private releaseHandle(): DeviceHandle | undefined {
    const handle = this.handle;
    if (!handle) return undefined;
    this.handle = undefined;
    const stream = handle.stream;
    stream.off('data', this.onDeviceData);
    stream.off('drain', this.onDeviceDrain);
    stream.off('error', this.onDeviceError);
    stream.off('end', this.onDeviceGone);
    stream.off('close', this.onDeviceGone);
    handle.onEvent(ignore);
    this.options.onConfiguration?.({});
    this.exchange?.fail(new DeviceError(`device ${this.path} closed`));
    this.exchange?.close();
    this.exchange = undefined;
    // A late error from a closing port must not be unhandled.
    stream.on('error', ignore);
    this.blocked.clear();
    return handle;
  }

  private closeDevice(reason: string): void {
    const handle = this.releaseHandle();
    if (!handle) return;
    this.options.log.info({ path: this.path, reason }, 'closing device');
    this.closing = handle.close().catch((err: unknown) => {
      this.options.log.warn({ path: this.path, error: errorMessage(err) }, 'device close failed');
    });
  }

  private lose(cause: Error | undefined): void {
    this.exchange?.fail(new DeviceError(`device ${this.path} removed`));
    const handle = this.releaseHandle();
    if (!handle && this.ports.length === 0) return;
    this.options.log.warn({ path: this.path, error: cause ? errorMessage(cause) : undefined, sessions: this.ports.length }, 'device lost');
    const err: ErrorPayload = { code: 'DEVICE_ERROR', message: `device ${this.path} removed` };
    for (const port of [...this.ports]) port.fail(err);
    if (handle) this.closing = handle.close().catch(() => undefined);
  }

  private onDeviceData(chunk: Buffer): void {
    this.deviceMeter.record(chunk.length);
    if (this.exchange) {
      this.exchange.onDeviceData(chunk);
      return;
    }
    const frames = this.handle?.frames;
    if (frames) {
      fanOutFrame(this.ports, chunk, frames.header);
      return;
    }
    const ports = this.ports;
    for (let i = 0; i < ports.length; i++) {
      const port = ports[i] as SessionPort;
      if (!port.deliver(chunk)) this.blocked.add(port);
    }
    if (this.blocked.size > 0) this.handle?.stream.pause();
  }

  private onDeviceEvent(event: DeviceEvent): void {
    const kind = DeviceEventType[event.type] ?? String(event.type);
    this.options.stats.add('device_events', 1, { device: this.path, type: kind });
    for (const port of this.ports) {
      if (!port.sendEvent(event)) this.options.stats.add('device_events_dropped', 1, { device: this.path, reason: 'slow_consumer' });
    }
  }

  private onDeviceDrain(): void {
    // Snapshot first: a completed write may start the next one, which can wait again.
    const waiting = this.waitingForDrain.splice(0, this.waitingForDrain.length);
    for (const port of waiting) {
      const cb = port.pendingWrite;
      port.pendingWrite = undefined;
      cb?.();
    }
  }

  private onDeviceError(err: Error): void {
    this.lose(err);
  }

  /** 'close' (serialport passes the disconnect error) or 'end': no more bytes will come. */
  private onDeviceGone(err?: Error | null): void {
    this.lose(err ?? undefined);
  }
}

function ignore(): void {
  // Intentionally empty: see releaseHandle.
}

/**
 * One session's view of a shared device, as a Duplex so pipeSession() joins it to the session:
 * reads are the device's output (pushed by the host), writes go to the device. Ending or
 * destroying it only takes this session off the device; the device stream itself stays open for
 * the others.
 */
export class SessionPort extends Duplex implements ExchangeConsumer, FrameConsumer {
  private static nextKey = 1;
  /** Unique per session on this agent: the exchange's consumer key. */
  readonly key: string;
  readonly mappingId: string;
  readonly priority: number;
  readonly weight: number;
  readonly workloadId: string;
  readonly exclusive: boolean;
  readonly readOnly: boolean;
  readonly access: CommandAccess;
  readonly pinSerial: boolean;
  readonly spanAttributes: Readonly<Record<string, string>>;
  /** The sidecar's trace of this session (from its OPEN), once attached. */
  traceContext: Context = ROOT_CONTEXT;
  /** A framed capture: whether this session has had the stream header (see fanOutFrame). */
  primed = false;
  readonly framesDropped: Counter;
  /** Set while a write waits for the device's 'drain'. */
  pendingWrite: ((err?: Error | null) => void) | undefined;
  private session: Session | undefined;
  private readonly bytesFromDevice: Counter;
  private readonly bytesToDevice: Counter;
  private readonly writesRefused: Counter;

  private readonly gate: LimitGate;
  /** Device output to this session, at the binding's rate in slow mode. */
  private readonly pacer: OutputPacer;

  constructor(
    private readonly host: DeviceSessionHost,
    mapping: Mapping,
    readonly limits: BindingLimits,
    stats: Stats,
  ) {
    super({ readableHighWaterMark: PORT_HIGH_WATER_MARK, writableHighWaterMark: PORT_HIGH_WATER_MARK });
    this.key = `${mapping.id}#${SessionPort.nextKey++}`;
    this.mappingId = mapping.id;
    this.priority = mapping.policy?.priority ?? 0;
    this.weight = mapping.policy?.weight || 1;
    this.gate = new LimitGate(limits, host.deviceBucket, host.deviceMeter);
    this.pacer = new OutputPacer({
      bucket: limits.bytes,
      drop: () => limits.drop,
      release: (chunk) => void this.push(chunk),
      throttled: () => limits.markThrottled(),
      drained: () => {
        if (this.readableLength < this.readableHighWaterMark) host.unblock(this);
      },
      highWaterMark: PORT_HIGH_WATER_MARK,
    });
    this.workloadId = mapping.workloadId;
    this.exclusive = isExclusive(mapping);
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
      this.host.execute(this, command).then(
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

  /** @returns false when this port's buffer (or the output its rate limit holds back) is full and the device should pause. */
  deliver(chunk: Buffer): boolean {
    this.bytesFromDevice.add(chunk.length);
    this.limits.meter.record(chunk.length);
    return this.pacer.offer(chunk) && this.readableLength < this.readableHighWaterMark;
  }

  receive(chunk: Buffer): void {
    this.host.deliverTo(this, chunk);
  }

  refuse(err: DeviceMeshError): void {
    this.fail({ code: err.code, message: err.message });
  }

  override _read(): void {
    // Output held back by the rate limit resumes the device once it drains (the pacer's `drained`).
    if (!this.pacer.saturated) this.host.unblock(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    // Whatever the sharing mode: a read-only binding's bytes never reach the device, the session ends with the
    // reason; unless the exchange's codec tells reads from writes per request (Modbus: FC 1–4 pass).
    if (this.readOnly && !this.host.checksAccess) {
      this.writesRefused.add(1);
      callback(new PermissionDeniedError(`mapping ${this.mappingId} is read-only: the app may not write to device ${this.host.path}`));
      return;
    }
    this.bytesToDevice.add(chunk.length);
    if (this.host.submit(this, chunk, callback)) return;
    if (!this.host.mayWrite(this)) {
      callback(new PermissionDeniedError(`device ${this.host.path} is broadcast: only ${this.host.writerWorkload ?? 'its writer'} writes to it`));
      return;
    }
    this.gate.write(chunk, this.writePiece, callback);
  }

  private readonly writePiece = (piece: Buffer, callback: (err?: Error | null) => void): void => {
    this.host.write(this, piece, callback);
  };

  /**
   * The client finished writing: a device conversation has no end of its own to wait for, so the
   * session ends here, once the last bytes went to the device.
   */
  override _final(callback: (err?: Error | null) => void): void {
    this.pacer.close();
    this.host.detach(this);
    this.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.pacer.close();
    this.host.detach(this);
    callback(err);
  }
}
