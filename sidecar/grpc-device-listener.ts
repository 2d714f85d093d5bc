import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import { type Span, SpanStatusCode } from '@opentelemetry/api';
import { toServiceError } from '../src/grpc/grpc-errors';
import { DeviceMeshError, errorMessage, UnavailableError } from '../src/errors';
import { serviceDefinition } from '../src/proto/load';
import type { Mapping } from '../src/proto/types';
import type { DeviceCommand } from '../src/socket-plane/device-command';
import type { DeviceEvent } from '../src/socket-plane/device-event';
import type { ConsumerSession } from '../src/socket-plane/consumer-session';
import { bindingLabels } from '../src/telemetry/binding-labels';
import type { Counter, Labels } from '../src/telemetry/stats';
import {
  commandErrorResponse,
  commandReplyResponse,
  type DeviceCommandMessage,
  type DeviceRequestMessage,
  type DeviceResponseMessage,
  eventResponse,
  openedResponse,
  toDeviceCommand,
} from './grpc-device-messages';
import { AppConnectionGate } from './app-connection-limits';
import { AppSessions, ByteReport } from './app-sessions';
import type { ListenerContext } from './listener';
import { bindAppListener, drainPeriod, type VirtualListener } from './virtual-listener';

type DeviceCall = grpc.ServerDuplexStream<DeviceRequestMessage, DeviceResponseMessage>;

/** Responses waiting for a slow app above which events are dropped: events are not flow-controlled, data is. */
const EVENT_BACKLOG_LIMIT = 1024;
/** How long close() lets calls deliver their final status before cutting the app's connections. */
const CLOSE_GRACE_MS = 2_000;

interface AppCall {
  call: DeviceCall;
  /** Set once the agent accepted the OPEN. */
  session: ConsumerSession | undefined;
  /** Payload bytes relayed, and how much of them the stats already have. */
  bytesIn: number;
  bytesOut: number;
  bytes: ByteReport;
  inputEnded: boolean;
  done: boolean;
  /** The call's span; the agent's spans of its session continue it. */
  span: Span;
}

/**
 * The virtual device of one GRPC mapping: a gRPC server speaking devicemesh.v1.DeviceSession, each
 * Open call a session to the mapping's agent. Unlike raw TCP, the app learns why a session could
 * not open or failed: the call ends with the error's gRPC status and message.
 *
 * The TCP listener is ours, not grpc-js's: the app connection limits of the raw and RFC 2217
 * listeners apply as each connection is accepted, and only admitted connections are handed to
 * grpc-js (its connection injector).
 */
export class GrpcDeviceListener implements VirtualListener {
  private readonly calls = new Set<AppCall>();
  private readonly mappingLabels: Labels;
  private readonly eventsDropped: Counter;
  private readonly server = new grpc.Server();
  private readonly gate: AppConnectionGate;
  private readonly sessions: AppSessions;
  private boundAddress = '';
  private closing = false;

  private constructor(
    private current: Mapping,
    private readonly tcp: net.Server,
    private readonly ctx: ListenerContext,
  ) {
    this.mappingLabels = bindingLabels(current);
    this.eventsDropped = ctx.stats.counter('events_dropped', this.mappingLabels);
    this.server.addService(serviceDefinition('devicemesh.v1.DeviceSession'), { Open: (call: DeviceCall) => this.onCall(call) });
    // Without TLS: the app is on loopback or in the workload's own network namespace.
    const injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.gate = new AppConnectionGate(tcp, ctx.limits, ctx.stats, ctx.log, () => this.current.id);
    this.sessions = new AppSessions(ctx, () => this.current);
    tcp.on('connection', (socket: net.Socket) => {
      if (!this.gate.admit(socket)) return;
      this.gate.requireHttp2Preface(socket);
      socket.setNoDelay(true);
      injector.injectConnection(socket);
    });
  }

  /** Binds the mapping's listen address; rejects when it cannot. */
  static async start(mapping: Mapping, ctx: ListenerContext): Promise<GrpcDeviceListener> {
    const tcp = net.createServer();
    const listener = new GrpcDeviceListener(mapping, tcp, ctx);
    try {
      listener.boundAddress = await bindAppListener(tcp, mapping, ctx.log, 'gRPC virtual device');
    } catch (err) {
      listener.server.forceShutdown();
      throw new UnavailableError(`virtual device ${mapping.id} cannot listen on ${mapping.virtual?.listen ?? ''}: ${errorMessage(err)}`, { cause: err });
    }
    return listener;
  }

  get address(): string {
    return this.boundAddress;
  }

  get mapping(): Mapping {
    return this.current;
  }

  get connectionCount(): number {
    return this.calls.size;
  }

  /** Same listen address, new content: calls made from now on use it; live ones keep theirs, and held ones try it. */
  update(mapping: Mapping): void {
    this.current = mapping;
    this.sessions.changed();
  }

  withdraw(): void {
    this.sessions.withdraw();
  }

  /** Moves the byte counts of live calls into the stats. */
  flushStats(): void {
    for (const app of this.calls) this.report(app);
  }

  /** Refuses new calls at once; ends the calls still live after `timeoutMs`. */
  async drain(timeoutMs: number, reason: string): Promise<void> {
    this.closing = true;
    await drainPeriod(() => this.calls.size, timeoutMs);
    await this.close(reason);
  }

  /** Stops accepting and ends every live call with UNAVAILABLE and `reason`, telling the agent too. */
  close(reason: string): Promise<void> {
    this.closing = true;
    const err = new UnavailableError(reason);
    for (const app of [...this.calls]) this.finish(app, err);
    this.ctx.log.info({ mapping: this.current.id, listen: this.address, reason }, 'gRPC virtual device closed');
    const stopped = new Promise<void>((resolve) => {
      if (this.tcp.listening) this.tcp.close(() => resolve());
      else resolve();
    });
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.server.forceShutdown(), CLOSE_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        void stopped.then(resolve);
      });
    });
  }

  private onCall(call: DeviceCall): void {
    const { stats } = this.ctx;
    const mapping = this.current;
    stats.add('app_connections', 1, this.mappingLabels);
    const span = this.sessions.span('app call', mapping);
    const app: AppCall = { call, session: undefined, bytesIn: 0, bytesOut: 0, bytes: new ByteReport(stats, this.mappingLabels), inputEnded: false, done: false, span };
    this.calls.add(app);
    call.once('cancelled', () => this.finish(app, new UnavailableError('the app cancelled the call')));
    if (this.closing) {
      this.finish(app, new UnavailableError(`virtual device ${mapping.id} is closing`));
      return;
    }
    this.sessions.open(mapping, span).then(
      (session) => {
        if (app.done) {
          session.reset({ code: 'UNAVAILABLE', message: 'the app call ended before the session opened' });
          return;
        }
        app.session = session;
        this.relay(app, session, mapping);
      },
      (err: unknown) => this.finish(app, this.sessions.refused(err, mapping, span, 'ending the call')),
    );
  }

  /** Joins the call and the session both ways, each side's backpressure holding back the other. */
  private relay(app: AppCall, session: ConsumerSession, mapping: Mapping): void {
    const { call } = app;
    let unflushed = 0;
    this.send(app, openedResponse(mapping));
    session.on('data', (chunk: Buffer) => {
      app.bytesOut += chunk.length;
      // Credit goes back to the agent only for what the call took: a slow app slows the device.
      if (this.send(app, { data: chunk })) session.consumed(chunk.length);
      else unflushed += chunk.length;
    });
    call.on('drain', () => {
      const n = unflushed;
      unflushed = 0;
      if (n > 0) session.consumed(n);
    });
    session.on('drain', () => call.resume());
    session.on('event', (event: DeviceEvent) => {
      if (call.writableLength >= EVENT_BACKLOG_LIMIT) this.eventsDropped.add(1);
      else this.send(app, eventResponse(event));
    });
    session.once('close', (err: DeviceMeshError | undefined) => {
      if (err) this.ctx.log.info({ mapping: mapping.id, code: err.code, error: err.message }, 'session ended with an error');
      this.finish(app, err);
    });
    call.on('data', (request: DeviceRequestMessage) => this.onRequest(app, session, request));
    // The app's half-close only says no more requests: the device's input ends with end_of_input. Once the device has
    // also said all it had, nothing more can happen and the session ends. (A cancel reads as a half-close then a
    // reset, so ending the input on half-close would show the agent a clean end instead of the cancel.)
    let requestsEnded = false;
    let deviceEnded = false;
    session.on('end', () => {
      deviceEnded = true;
      if (requestsEnded) session.end();
    });
    call.on('end', () => {
      requestsEnded = true;
      if (deviceEnded) session.end();
    });
  }

  private onRequest(app: AppCall, session: ConsumerSession, request: DeviceRequestMessage): void {
    switch (request.request) {
      case 'data':
        if (app.inputEnded) {
          this.finish(app, new DeviceMeshError('INVALID_ARGUMENT', 'data after end_of_input'));
          return;
        }
        app.bytesIn += request.data.length;
        if (!session.write(request.data)) app.call.pause();
        return;
      case 'command':
        this.command(app, session, request.command);
        return;
      case 'endOfInput':
        app.inputEnded = true;
        session.end();
        return;
      default:
        // A request of a newer proto, or none set: nothing to relay.
        this.ctx.log.debug({ mapping: this.current.id }, 'ignoring a DeviceRequest with no known member set');
    }
  }

  private command(app: AppCall, session: ConsumerSession, message: DeviceCommandMessage): void {
    const { requestId } = message;
    let command: DeviceCommand;
    try {
      command = toDeviceCommand(message);
    } catch (err) {
      this.send(app, commandErrorResponse(requestId, err));
      return;
    }
    session.command(command).then(
      (reply) => this.send(app, commandReplyResponse(requestId, reply)),
      (err: unknown) => this.send(app, commandErrorResponse(requestId, err)),
    );
  }

  /** @returns false when the call wants no more for now (or is over). */
  private send(app: AppCall, response: DeviceResponseMessage): boolean {
    return !app.done && app.call.write(response);
  }

  /** Ends the call and its session once: the session, if still open, is reset with `err`; the call's status is `err` (OK without). */
  private finish(app: AppCall, err: DeviceMeshError | undefined): void {
    if (app.done) return;
    app.done = true;
    this.calls.delete(app);
    this.report(app);
    app.span.setAttributes({ 'devicemesh.bytes_in': app.bytesIn, 'devicemesh.bytes_out': app.bytesOut });
    if (err) app.span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
    app.span.end();
    if (app.session && !app.session.closed) {
      app.session.reset({ code: err?.code ?? 'UNAVAILABLE', message: err?.message ?? 'the app call ended' });
    }
    if (app.call.cancelled) return;
    // grpc-js ends a server stream with the status of an emitted error, after the responses already written.
    if (err) app.call.emit('error', toServiceError(err));
    else app.call.end();
  }

  private report(app: AppCall): void {
    app.bytes.report(app.bytesIn, app.bytesOut);
  }
}
