import type { DeviceMeshError } from '../errors';
import type { ErrorPayload } from './control-messages';
import type { CommandReply, DeviceCommand } from './device-command';
import type { DeviceEvent } from './device-event';

/** What a consumer of a session hears: the device's bytes and events, credit back, the end. */
export interface ConsumerSessionEvents {
  data: [chunk: Buffer];
  drain: [];
  end: [];
  event: [event: DeviceEvent];
  close: [err: DeviceMeshError | undefined];
}

/**
 * The consumer's side of a session, as a relay to an app uses it: a socket-plane Session, or a
 * sidecar's roaming session that holds the app across a device's move between agents.
 */
export interface ConsumerSession {
  readonly closed: boolean;
  /** Like stream.write: false means "stop until `drain`"; the chunk is kept either way. */
  write(chunk: Buffer): boolean;
  /** The sink took `n` bytes of what this session emitted: the peer gets its credit back. */
  consumed(n: number): void;
  /** Half close: this side sends no more. */
  end(): void;
  /** Abort with a reason the peer will see. */
  reset(err: ErrorPayload): void;
  command(command: DeviceCommand): Promise<CommandReply>;
  on<K extends keyof ConsumerSessionEvents>(event: K, listener: (...args: ConsumerSessionEvents[K]) => void): this;
  once<K extends keyof ConsumerSessionEvents>(event: K, listener: (...args: ConsumerSessionEvents[K]) => void): this;
  off<K extends keyof ConsumerSessionEvents>(event: K, listener: (...args: ConsumerSessionEvents[K]) => void): this;
}
