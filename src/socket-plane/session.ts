import { EventEmitter } from 'node:events';
import { DeviceMeshError, ResourceExhaustedError, UnavailableError } from '../errors';
import type { ErrorPayload } from './control-messages';
import type { CommandReply, CommandRequest, CommandResult, DeviceCommand } from './device-command';
import type { DeviceEvent } from './device-event';
import { INITIAL_WINDOW, MAX_DATA_CHUNK } from './frame';

/** Commands a consumer may have waiting for their result on one session. */
export const MAX_PENDING_COMMANDS = 64;

/** What a session needs from its connection: how to put its frames on the wire. */
export interface SessionTransport {
  sendData(session: number, chunk: Buffer): void;
  sendWindow(session: number, increment: number): void;
  sendClose(session: number): void;
  sendReset(session: number, err: ErrorPayload): void;
  /** @returns false when the event was dropped because the peer is not reading. */
  sendEvent(session: number, event: DeviceEvent): boolean;
  sendCommand(session: number, command: CommandRequest): void;
  sendCommandResult(session: number, result: CommandResult): void;
  released(session: number): void;
}

interface PendingCommand {
  resolve(reply: CommandReply): void;
  reject(err: DeviceMeshError): void;
}

/**
 * One app-to-device conversation inside a socket-plane connection, with credit-based flow
 * control in both directions (HTTP/2 style): a sender may have at most INITIAL_WINDOW bytes
 * unacknowledged; the receiver grants credit back only once its sink has taken the bytes, so
 * a slow device slows the app through TCP and nothing buffers without bound.
 *
 * Beside the bytes, the device side sends events (`sendEvent`) and answers commands: the
 * consumer's `command()` resolves with the reply, the device side gets `command` and answers
 * with `respond()`. Neither is flow-controlled: events are dropped (and counted by the caller)
 * when the peer stops reading, and a consumer may have MAX_PENDING_COMMANDS outstanding.
 *
 * Events: `data` (Buffer), `drain` (send credit is back), `end` (the peer will send no more),
 * `event` (DeviceEvent, consumer side), `command` (CommandRequest, device side),
 * `close` (DeviceMeshError | undefined) once the session is finished either way.
 */
export class Session extends EventEmitter {
  private sendCredit = INITIAL_WINDOW;
  private recvRemaining = INITIAL_WINDOW;
  private toGrant = 0;
  private readonly queued: Buffer[] = [];
  private localClosed = false;
  private closeSent = false;
  private remoteClosed = false;
  private finished = false;
  private wantsDrain = false;
  private nextRequestId = 1;
  private readonly pendingCommands = new Map<number, PendingCommand>();
  private commandsInFlight = 0;

  constructor(
    readonly id: number,
    private readonly transport: SessionTransport,
  ) {
    super();
  }

  get closed(): boolean {
    return this.finished;
  }

  /** Like stream.write: false means "stop until `drain`"; the chunk is kept either way. */
  write(chunk: Buffer): boolean {
    if (this.finished || this.localClosed) return false;
    if (this.queued.length > 0) this.queued.push(chunk);
    else this.sendWithinCredit(chunk);
    const ok = this.queued.length === 0 && this.sendCredit > 0;
    if (!ok) this.wantsDrain = true;
    return ok;
  }

  /** The sink took `n` bytes of what this session emitted: give the peer its credit back. */
  consumed(n: number): void {
    if (this.finished) return;
    this.toGrant += n;
    // Batched so a stream of small chunks costs few WINDOW frames.
    if (this.toGrant >= INITIAL_WINDOW / 4) this.grant();
  }

  /**
   * Once closed: the bytes written that never went out for want of credit, in order, handed over
   * (a relay that resumes elsewhere sends them there). Empty while open.
   */
  takeUnsent(): Buffer[] {
    return this.finished ? this.queued.splice(0) : [];
  }

  /** Half close: this side sends no more. Queued bytes still go first. */
  end(): void {
    if (this.localClosed || this.finished) return;
    this.localClosed = true;
    if (this.queued.length === 0) this.flushClose();
  }

  /** Abort with a reason the peer will see. */
  reset(err: ErrorPayload): void {
    if (this.finished) return;
    this.transport.sendReset(this.id, err);
    this.finish(new DeviceMeshError(err.code, err.message));
  }

  /** Device side: sends an event; false when it was dropped because the peer is not reading. */
  sendEvent(event: DeviceEvent): boolean {
    if (this.finished) return false;
    return this.transport.sendEvent(this.id, event);
  }

  /** Consumer side: sends a command; resolves with the device's reply, rejects with its error. */
  command(command: DeviceCommand): Promise<CommandReply> {
    if (this.finished) return Promise.reject(new UnavailableError(`session ${this.id} is closed`));
    if (this.pendingCommands.size >= MAX_PENDING_COMMANDS) {
      return Promise.reject(new ResourceExhaustedError(`session ${this.id} already has ${MAX_PENDING_COMMANDS} commands waiting`));
    }
    const requestId = this.nextRequestId;
    this.nextRequestId = (this.nextRequestId % 0xffffffff) + 1;
    return new Promise<CommandReply>((resolve, reject) => {
      this.pendingCommands.set(requestId, { resolve, reject });
      try {
        this.transport.sendCommand(this.id, { ...command, requestId });
      } catch (err) {
        // Not sent (a target too long to encode): nothing will answer it.
        this.pendingCommands.delete(requestId);
        reject(err);
      }
    });
  }

  /** Device side: answers a command received through `command`. */
  respond(result: CommandResult): void {
    if (this.finished) return;
    this.commandsInFlight -= 1;
    this.transport.sendCommandResult(this.id, result);
  }

  /* ---- called by the connection ---- */

  receiveEvent(event: DeviceEvent): void {
    if (!this.finished) this.emit('event', event);
  }

  receiveCommand(command: CommandRequest): void {
    if (this.finished) return;
    if (this.commandsInFlight >= MAX_PENDING_COMMANDS) {
      this.transport.sendCommandResult(this.id, {
        requestId: command.requestId,
        ok: false,
        code: 'RESOURCE_EXHAUSTED',
        message: `more than ${MAX_PENDING_COMMANDS} commands waiting on session ${this.id}`,
      });
      return;
    }
    this.commandsInFlight += 1;
    this.emit('command', command);
  }

  /** @returns false for a result of no command waiting (a protocol error for the connection). */
  receiveCommandResult(result: CommandResult): boolean {
    if (this.finished) return true;
    const pending = this.pendingCommands.get(result.requestId);
    if (!pending) return false;
    this.pendingCommands.delete(result.requestId);
    if (result.ok) pending.resolve({ value: result.value, data: result.data });
    else pending.reject(new DeviceMeshError(result.code, result.message));
    return true;
  }

  /** @returns false when the peer overran its credit (a protocol error for the connection). */
  receiveData(payload: Buffer): boolean {
    if (this.finished || this.remoteClosed) return true;
    this.recvRemaining -= payload.length;
    if (this.recvRemaining < 0) return false;
    this.emit('data', payload);
    return true;
  }

  receiveWindow(increment: number): void {
    if (this.finished) return;
    this.sendCredit += increment;
    while (this.queued.length > 0 && this.sendCredit > 0) {
      const chunk = this.queued.shift() as Buffer;
      this.sendWithinCredit(chunk);
    }
    if (this.queued.length === 0) {
      if (this.localClosed) this.flushClose();
      if (this.wantsDrain && this.sendCredit > 0) {
        this.wantsDrain = false;
        this.emit('drain');
      }
    }
  }

  receiveClose(): void {
    if (this.remoteClosed || this.finished) return;
    this.remoteClosed = true;
    this.emit('end');
    this.maybeFinish();
  }

  receiveReset(err: ErrorPayload): void {
    this.finish(new DeviceMeshError(err.code, err.message));
  }

  /** The connection is gone. */
  abort(err: DeviceMeshError): void {
    this.finish(err);
  }

  private grant(): void {
    const n = this.toGrant;
    this.toGrant = 0;
    this.recvRemaining += n;
    this.transport.sendWindow(this.id, n);
  }

  private sendWithinCredit(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && this.sendCredit > 0) {
      const n = Math.min(chunk.length - offset, MAX_DATA_CHUNK, this.sendCredit);
      this.transport.sendData(this.id, offset === 0 && n === chunk.length ? chunk : chunk.subarray(offset, offset + n));
      this.sendCredit -= n;
      offset += n;
    }
    if (offset < chunk.length) this.queued.unshift(offset === 0 ? chunk : chunk.subarray(offset));
  }

  private flushClose(): void {
    if (this.closeSent) return;
    this.closeSent = true;
    this.transport.sendClose(this.id);
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.closeSent && this.remoteClosed) this.finish(undefined);
  }

  private finish(err: DeviceMeshError | undefined): void {
    if (this.finished) return;
    this.finished = true;
    // `queued` is kept for takeUnsent: bytes accepted from the consumer that never went out.
    const gone = err ?? new UnavailableError(`session ${this.id} closed before the device answered`);
    for (const pending of this.pendingCommands.values()) pending.reject(gone);
    this.pendingCommands.clear();
    this.transport.released(this.id);
    this.emit('close', err);
  }
}
