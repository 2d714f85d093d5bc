import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { DeviceMeshError, errorMessage, ProtocolError, ResourceExhaustedError, UnavailableError } from '../errors';
import { decodeError, decodeOpen, encodeError, encodeOpen, type ErrorPayload, type OpenRequest } from './control-messages';
import { type CommandRequest, type CommandResult, decodeCommand, decodeCommandResult, encodeCommand, encodeCommandResult } from './device-command';
import { decodeDeviceEvent, type DeviceEvent, encodeDeviceEvent } from './device-event';
import { encodeFrame, encodeHeader, encodeWindow, FrameType, PREFACE } from './frame';
import { FrameDecoder } from './frame-decoder';
import { Session, type SessionTransport } from './session';

/** Server side: decide on an OPEN. Call exactly one of accept / refuse. */
export interface OpenDecision {
  request: OpenRequest;
  accept(): Session;
  refuse(err: ErrorPayload): void;
}

export interface ConnectionOptions {
  /** Most sessions one peer may hold open at once. */
  maxSessions?: number;
  /** How long a server waits for the preface before closing. */
  prefaceTimeoutMs?: number;
  /** Bytes queued on the socket above which events are dropped instead of sent. */
  eventBacklogLimit?: number;
  /**
   * Server: a connection without a session for this long is closed (a peer that connects, sends
   * the preface and then nothing, or only refused OPENs, does not hold a socket forever).
   */
  idleTimeoutMs?: number;
  /**
   * Bytes queued on the socket for a peer that does not read, above which the connection is
   * closed. DATA is bounded by the session windows; this bounds the control frames (RESETs,
   * command results) a peer can make us queue by sending requests and never reading answers.
   */
  maxBufferedBytes?: number;
}

/** A peer that leaves this much unread gets no more events until it catches up. */
export const DEFAULT_EVENT_BACKLOG = 1 << 20;
export const DEFAULT_MAX_SESSIONS = 1024;
export const DEFAULT_PREFACE_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 32 << 20;

/**
 * One TCP connection of the socket plane, carrying many sessions. The client (sidecar) opens
 * sessions; the server (agent) decides on each OPEN through the `open` event.
 *
 * Events: `open` (OpenDecision, server only), `protocolError` (DeviceMeshError: the peer broke the
 * protocol or a limit, the connection is closing), `drained` (its last session ended), `idle`
 * (server: closed for want of sessions),
 * `close` (DeviceMeshError | undefined).
 */
export class FramedConnection extends EventEmitter implements SessionTransport {
  private readonly sessions = new Map<number, Session>();
  private readonly opening = new Map<number, { resolve(s: Session): void; reject(e: Error): void }>();
  private readonly decoder: FrameDecoder;
  private readonly maxSessions: number;
  private readonly eventBacklogLimit: number;
  private readonly maxBufferedBytes: number;
  private readonly idleTimeoutMs: number;
  private idleTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private prefaceSeen: boolean;
  private prefaceBuf: Buffer = Buffer.alloc(0);
  private prefaceTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly socket: net.Socket,
    readonly role: 'client' | 'server',
    options: ConnectionOptions = {},
  ) {
    super();
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.eventBacklogLimit = options.eventBacklogLimit ?? DEFAULT_EVENT_BACKLOG;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.decoder = new FrameDecoder((type, session, payload) => this.onFrame(type, session, payload));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.prefaceSeen = role === 'client';
    if (role === 'client') socket.write(PREFACE);
    else {
      this.prefaceTimer = setTimeout(
        () => this.fail(new ProtocolError('no socket-plane preface within the handshake timeout')),
        options.prefaceTimeoutMs ?? DEFAULT_PREFACE_TIMEOUT_MS,
      );
    }
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', (err) => this.shutdown(new UnavailableError(`socket plane: ${err.message}`)));
    socket.on('close', () => this.shutdown(new UnavailableError('socket-plane connection closed')));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  remoteAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  /** Client: opens a session; rejects with the server's reason when it refuses. */
  openSession(request: OpenRequest): Promise<Session> {
    if (this.closed) return Promise.reject(new UnavailableError('socket-plane connection is closed'));
    const id = this.nextId;
    this.nextId += 2;
    const session = new Session(id, this);
    this.sessions.set(id, session);
    return new Promise<Session>((resolve, reject) => {
      this.opening.set(id, { resolve, reject });
      this.socket.write(encodeFrame(FrameType.Open, id, encodeOpen(request)));
    });
  }

  /** Closes the connection, telling the peer why. */
  goAway(err: ErrorPayload): void {
    if (this.closed) return;
    this.socket.write(encodeFrame(FrameType.GoAway, 0, encodeError(err)));
    this.socket.end();
    this.shutdown(new DeviceMeshError(err.code, err.message));
  }

  destroy(): void {
    this.socket.destroy();
    this.shutdown(new UnavailableError('socket-plane connection closed'));
  }

  /* ---- SessionTransport ---- */

  sendData(session: number, chunk: Buffer): void {
    if (this.closed) return;
    this.socket.cork();
    this.socket.write(encodeHeader(FrameType.Data, session, chunk.length));
    this.socket.write(chunk);
    this.socket.uncork();
  }

  sendWindow(session: number, increment: number): void {
    this.writeControl(encodeWindow(session, increment));
  }

  sendClose(session: number): void {
    this.writeControl(encodeFrame(FrameType.Close, session));
  }

  sendReset(session: number, err: ErrorPayload): void {
    this.writeControl(encodeFrame(FrameType.Reset, session, encodeError(err)));
  }

  sendEvent(session: number, event: DeviceEvent): boolean {
    if (this.closed || this.socket.writableLength > this.eventBacklogLimit) return false;
    this.socket.write(encodeFrame(FrameType.Event, session, encodeDeviceEvent(event)));
    return true;
  }

  sendCommand(session: number, command: CommandRequest): void {
    if (!this.closed) this.socket.write(encodeFrame(FrameType.Command, session, encodeCommand(command)));
  }

  sendCommandResult(session: number, result: CommandResult): void {
    this.writeControl(encodeFrame(FrameType.CommandResult, session, encodeCommandResult(result)));
  }

  released(session: number): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0) this.drained();
  }

  private drained(): void {
    this.emit('drained');
    this.armIdle();
  }

  /** A control frame; a peer that lets them pile up unread loses the connection instead of our memory. */
  private writeControl(frame: Buffer): void {
    if (this.closed) return;
    this.socket.write(frame);
    if (this.socket.writableLength <= this.maxBufferedBytes) return;
    const err = new ResourceExhaustedError(`peer is not reading: ${this.socket.writableLength} bytes queued (limit ${this.maxBufferedBytes})`);
    this.emit('protocolError', err);
    this.socket.destroy();
    this.shutdown(err);
  }

  /** Server: starts the no-session countdown (the preface timer covers the time before). */
  private armIdle(): void {
    if (this.role !== 'server' || this.closed || !this.prefaceSeen) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.emit('idle');
      this.goAway({ code: 'UNAVAILABLE', message: `no session for ${this.idleTimeoutMs} ms; connection closed` });
    }, this.idleTimeoutMs);
  }

  /* ---- inbound ---- */

  private onBytes(chunk: Buffer): void {
    if (this.closed) return;
    try {
      if (!this.prefaceSeen) {
        chunk = this.consumePreface(chunk);
        if (!this.prefaceSeen) return;
      }
      if (chunk.length > 0) this.decoder.push(chunk);
    } catch (err) {
      this.fail(err instanceof DeviceMeshError ? err : new ProtocolError(errorMessage(err)));
    }
  }

  private consumePreface(chunk: Buffer): Buffer {
    const have = Buffer.concat([this.prefaceBuf, chunk]);
    const n = Math.min(have.length, PREFACE.length);
    if (!have.subarray(0, n).equals(PREFACE.subarray(0, n))) {
      throw new ProtocolError('not a devicemesh socket-plane client (bad preface)');
    }
    if (have.length < PREFACE.length) {
      this.prefaceBuf = have;
      return Buffer.alloc(0);
    }
    this.prefaceSeen = true;
    clearTimeout(this.prefaceTimer);
    this.prefaceBuf = Buffer.alloc(0);
    this.armIdle();
    return have.subarray(PREFACE.length);
  }

  private onFrame(type: FrameType, id: number, payload: Buffer): void {
    if (id === 0) {
      if (type !== FrameType.GoAway) throw new ProtocolError(`frame type ${FrameType[type]} on session 0`);
      const err = decodeError(payload);
      this.socket.end();
      this.shutdown(new DeviceMeshError(err.code, `peer closed the connection: ${err.message}`));
      return;
    }
    if (type === FrameType.Open) {
      this.onOpen(id, payload);
      return;
    }
    const session = this.sessions.get(id);
    switch (type) {
      case FrameType.OpenOk: {
        const waiting = this.opening.get(id);
        if (!waiting || !session) throw new ProtocolError(`OPEN_OK for session ${id} that is not opening`);
        this.opening.delete(id);
        waiting.resolve(session);
        return;
      }
      case FrameType.Data:
        if (session && !session.receiveData(payload)) {
          throw new ProtocolError(`session ${id} sent beyond its flow-control window`);
        }
        return;
      case FrameType.Window:
        if (payload.length !== 4) throw new ProtocolError('WINDOW payload must be 4 bytes');
        session?.receiveWindow(payload.readUInt32BE(0));
        return;
      case FrameType.Close:
        session?.receiveClose();
        return;
      case FrameType.Event:
        if (this.role !== 'client') throw new ProtocolError('EVENT sent to a server');
        session?.receiveEvent(decodeDeviceEvent(payload));
        return;
      case FrameType.Command:
        if (this.role !== 'server') throw new ProtocolError('COMMAND sent to a client');
        session?.receiveCommand(decodeCommand(payload));
        return;
      case FrameType.CommandResult: {
        if (this.role !== 'client') throw new ProtocolError('COMMAND_RESULT sent to a server');
        const result = decodeCommandResult(payload);
        if (session && !session.receiveCommandResult(result)) {
          throw new ProtocolError(`COMMAND_RESULT for request ${result.requestId} that session ${id} is not waiting for`);
        }
        return;
      }
      case FrameType.Reset: {
        const err = decodeError(payload);
        const waiting = this.opening.get(id);
        if (waiting) {
          this.opening.delete(id);
          this.sessions.delete(id);
          waiting.reject(new DeviceMeshError(err.code, err.message));
          if (this.sessions.size === 0) this.drained();
          return;
        }
        session?.receiveReset(err);
        return;
      }
      default:
        throw new ProtocolError(`unexpected frame type ${FrameType[type]}`);
    }
  }

  private onOpen(id: number, payload: Buffer): void {
    if (this.role !== 'server') throw new ProtocolError('OPEN sent to a client');
    if (id % 2 === 0) throw new ProtocolError(`OPEN with even session id ${id}`);
    if (this.sessions.has(id)) throw new ProtocolError(`OPEN for session ${id} that is already open`);
    let request: OpenRequest;
    try {
      request = decodeOpen(payload);
    } catch (err) {
      this.sendReset(id, { code: 'PROTOCOL_ERROR', message: errorMessage(err) });
      return;
    }
    if (this.sessions.size >= this.maxSessions) {
      this.sendReset(id, { code: 'RESOURCE_EXHAUSTED', message: `too many sessions (limit ${this.maxSessions})` });
      return;
    }
    let decided = false;
    const decision: OpenDecision = {
      request,
      accept: () => {
        if (decided) throw new ProtocolError('OPEN already decided');
        if (this.closed) throw new UnavailableError('socket-plane connection closed before the OPEN was accepted');
        decided = true;
        const session = new Session(id, this);
        this.sessions.set(id, session);
        clearTimeout(this.idleTimer);
        this.writeControl(encodeFrame(FrameType.OpenOk, id));
        return session;
      },
      refuse: (err) => {
        if (decided) return;
        decided = true;
        this.sendReset(id, err);
      },
    };
    this.emit('open', decision);
  }

  private fail(err: DeviceMeshError): void {
    if (this.closed) return;
    this.emit('protocolError', err);
    this.goAway({ code: err.code, message: err.message });
  }

  private shutdown(err: DeviceMeshError): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.prefaceTimer);
    clearTimeout(this.idleTimer);
    for (const [, waiting] of this.opening) waiting.reject(err);
    this.opening.clear();
    for (const session of [...this.sessions.values()]) session.abort(err);
    this.sessions.clear();
    if (!this.socket.destroyed) this.socket.destroySoon();
    this.emit('close', err);
  }
}
