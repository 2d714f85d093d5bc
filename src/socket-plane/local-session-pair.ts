import type { ErrorPayload } from './control-messages';
import type { CommandRequest, CommandResult } from './device-command';
import type { DeviceEvent } from './device-event';
import { Session, type SessionTransport } from './session';

/** Both ends of one in-process session: what a consumer holds and what the device side holds. */
export interface LocalSessionPair {
  consumer: Session;
  device: Session;
}

/**
 * One end's transport: what a socket-plane connection would frame and send goes straight to the
 * other end's receive methods, so the two ends keep the socket plane's whole behaviour (credit,
 * half close, reset, commands and their limit, events) without a frame, a copy or a buffer.
 */
class DirectTransport implements SessionTransport {
  peer: Session | undefined;

  constructor(private readonly eventRoom: () => boolean) {}

  sendData(_session: number, chunk: Buffer): void {
    this.peer?.receiveData(chunk);
  }

  sendWindow(_session: number, increment: number): void {
    // Deferred: a grant made while the peer is inside its own send loop would let it send later bytes before earlier ones.
    queueMicrotask(() => this.peer?.receiveWindow(increment));
  }

  sendClose(): void {
    this.peer?.receiveClose();
  }

  sendReset(_session: number, err: ErrorPayload): void {
    this.peer?.receiveReset(err);
  }

  sendEvent(_session: number, event: DeviceEvent): boolean {
    if (!this.eventRoom()) return false;
    this.peer?.receiveEvent(event);
    return true;
  }

  sendCommand(_session: number, command: CommandRequest): void {
    this.peer?.receiveCommand(command);
  }

  sendCommandResult(_session: number, result: CommandResult): void {
    this.peer?.receiveCommandResult(result);
  }

  released(): void {
    this.peer = undefined;
  }
}

/**
 * A session whose two ends live in one process (the agent serving a one-hop endpoint): the
 * consumer end goes to the app's bridge, the device end to the device side, exactly as a
 * socket-plane session's would. `eventRoom` says whether the consumer's sink can take another
 * event (a socket-plane connection asks the same of its socket's backlog); when it cannot, the
 * event is dropped and the device side counts it.
 */
export function localSessionPair(id: number, eventRoom: () => boolean): LocalSessionPair {
  // Events go one way, device to consumer.
  const toDevice = new DirectTransport(() => true);
  const toConsumer = new DirectTransport(eventRoom);
  const consumer = new Session(id, toDevice);
  const device = new Session(id, toConsumer);
  toDevice.peer = device;
  toConsumer.peer = consumer;
  return { consumer, device };
}
