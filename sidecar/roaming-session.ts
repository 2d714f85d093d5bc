import { EventEmitter } from 'node:events';
import { DeviceMeshError, errorMessage, ResourceExhaustedError, UnavailableError } from '../src/errors';
import type { Logger } from '../src/log';
import type { Mapping } from '../src/proto/types';
import type { ConsumerSession, ConsumerSessionEvents } from '../src/socket-plane/consumer-session';
import type { ErrorPayload } from '../src/socket-plane/control-messages';
import type { CommandReply, DeviceCommand } from '../src/socket-plane/device-command';
import type { DeviceEvent } from '../src/socket-plane/device-event';
import type { Session } from '../src/socket-plane/session';
import type { Counter, Labels, Stats } from '../src/telemetry/stats';
import type { RoamingMoves } from './roaming-moves';

/** Where a roaming session finds its device: the listener's mapping as it is now. */
export interface RoamingTarget {
  /** The mapping now; undefined while it is withdrawn (the device is on no gateway). */
  current(): Mapping | undefined;
  /** Opens a session to the agent `mapping` leads to. */
  open(mapping: Mapping): Promise<Session>;
}

/** The mapping's policy as a hold applies it. */
export interface RoamingLimits {
  /** How long an app is held without a device before it gets the error. */
  holdMs: number;
  /** App writes held at most before reading from the app stops (the policy's queue depth). */
  depth: number;
}

export interface RoamingOptions extends RoamingLimits {
  stats: Stats;
  log: Logger;
  moves?: RoamingMoves;
}

/** A failed open on the new agent (its mapping may not have arrived yet) is tried again this soon. */
const RETRY_MS = 200;
/** A session lost with one of these codes lost its device (pulled, its agent gone): the app is held. */
const DEVICE_GONE = new Set(['DEVICE_ERROR', 'UNAVAILABLE']);

interface Hold {
  since: number;
  holdMs: number;
  cause: DeviceMeshError;
  /** host/device of the lost session. */
  from: string;
  deadline: NodeJS.Timeout;
  retry: NodeJS.Timeout | undefined;
  opening: boolean;
}

function where(m: Mapping): string {
  return m.physicalId || `${m.hostId}/${m.devicePath}`;
}

function sameTarget(a: Mapping, b: Mapping): boolean {
  return a.agentAddress === b.agentAddress && a.hostId === b.hostId && a.physicalId === b.physicalId;
}

/**
 * The session of one app connection of a roaming mapping, as its relay sees it: a socket-plane
 * session that outlives its device's move between gateways. When the session is lost because the
 * device went away, the app's connection stays open; what the app sends is held (at most `depth`
 * writes, then reading from the app stops), and once the mapping leads to an agent that opens a
 * session, the held bytes go there first, in order, and the relay carries on. Held past `holdMs`,
 * the relay gets the lost session's error, saying how long it waited.
 *
 * Credit stays per session: device bytes of a lost session that the app takes later return no
 * credit to the next one. Bytes the lost session had not sent for want of credit are held with the
 * rest; bytes already sent to the old agent went with the device.
 */
export class RoamingSession extends EventEmitter<ConsumerSessionEvents> implements ConsumerSession {
  private session: Session | undefined;
  /** The mapping the live (or lost) session was opened on. */
  private at: Mapping;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private wantsDrain = false;
  private ended = false;
  private finished = false;
  /** Device bytes of lost sessions the app has not taken yet: no credit goes back for them. */
  private stale = 0;
  /** Device bytes of the live session the app has not taken yet. */
  private outstanding = 0;
  private hold: Hold | undefined;
  /** The policy now: a changed deadline applies from the next hold on, a changed bound at once. */
  private limits: RoamingLimits;
  private readonly labels: Labels;
  private readonly heldCounter: Counter;

  constructor(
    session: Session,
    mapping: Mapping,
    private readonly target: RoamingTarget,
    private readonly options: RoamingOptions,
  ) {
    super();
    this.at = mapping;
    this.limits = { holdMs: options.holdMs, depth: options.depth };
    this.labels = { mapping: mapping.id };
    this.heldCounter = options.stats.counter('roaming_held_bytes', this.labels);
    this.attach(session);
  }

  get closed(): boolean {
    return this.finished;
  }

  /** Whether the app is being held for its device now. */
  get holding(): boolean {
    return this.hold !== undefined;
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.ended) return false;
    if (this.session) return this.session.write(chunk);
    this.keep(chunk);
    if (this.held.length > 2 * this.limits.depth) {
      // A writer that ignores backpressure: past the bound, the app gets the error now.
      this.expire(new ResourceExhaustedError(`more than ${this.limits.depth} writes held while the device moved`));
      return false;
    }
    if (this.held.length < this.limits.depth) return true;
    this.wantsDrain = true;
    return false;
  }

  consumed(n: number): void {
    if (this.finished) return;
    const old = Math.min(n, this.stale);
    this.stale -= old;
    const live = n - old;
    if (live === 0) return;
    this.outstanding -= live;
    this.session?.consumed(live);
  }

  end(): void {
    if (this.ended || this.finished) return;
    this.ended = true;
    this.session?.end();
  }

  reset(err: ErrorPayload): void {
    if (this.finished) return;
    this.session?.reset(err);
    this.finish(new DeviceMeshError(err.code, err.message));
  }

  command(command: DeviceCommand): Promise<CommandReply> {
    if (this.session) return this.session.command(command);
    return Promise.reject(new UnavailableError(`the device of mapping ${this.at.id} is moving between gateways`));
  }

  /** The listener's mapping changed (or came back), with its policy's `limits`: a held app tries the agent it leads to now. */
  mappingChanged(limits: RoamingLimits): void {
    this.limits = limits;
    const hold = this.hold;
    if (!hold) return;
    clearTimeout(hold.retry);
    hold.retry = undefined;
    this.tryResume(true);
  }

  private keep(chunk: Buffer): void {
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    this.heldCounter.add(chunk.length);
  }

  private attach(session: Session): void {
    this.session = session;
    this.stale += this.outstanding;
    this.outstanding = 0;
    session.on('data', this.onData);
    session.on('drain', this.onDrain);
    session.on('end', this.onEnd);
    session.on('event', this.onEvent);
    session.once('close', this.onClose);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.outstanding += chunk.length;
    this.emit('data', chunk);
  };

  private readonly onDrain = (): void => {
    this.wantsDrain = false;
    this.emit('drain');
  };

  private readonly onEnd = (): void => {
    this.emit('end');
  };

  private readonly onEvent = (event: DeviceEvent): void => {
    this.emit('event', event);
  };

  private readonly onClose = (err: DeviceMeshError | undefined): void => {
    const session = this.session as Session;
    session.off('data', this.onData);
    session.off('drain', this.onDrain);
    session.off('end', this.onEnd);
    session.off('event', this.onEvent);
    this.session = undefined;
    if (this.finished) return;
    const unsent = session.takeUnsent();
    // A clean end, a refusal, or an app that has said all it will and has nothing held: no hold.
    if (!err || !DEVICE_GONE.has(err.code) || (this.ended && unsent.length === 0)) {
      this.finish(err);
      return;
    }
    for (const chunk of unsent) this.keep(chunk);
    this.startHold(err);
  };

  private startHold(cause: DeviceMeshError): void {
    const { stats, log } = this.options;
    const { holdMs } = this.limits;
    stats.add('roaming_holds', 1, this.labels);
    const hold: Hold = {
      since: Date.now(),
      holdMs,
      cause,
      from: where(this.at),
      deadline: setTimeout(() => this.expire(), holdMs),
      retry: undefined,
      opening: false,
    };
    this.hold = hold;
    log.info({ mapping: this.at.id, from: hold.from, code: cause.code, error: cause.message, holdMs }, 'roaming: device gone; holding the app connection for it');
    this.tryResume(false);
  }

  /** Opens a session where the mapping leads now; `force`: also when that is where the lost one was. */
  private tryResume(force: boolean): void {
    const hold = this.hold;
    if (!hold || hold.opening) return;
    const mapping = this.target.current();
    if (!mapping || (!force && sameTarget(mapping, this.at))) return;
    hold.opening = true;
    let opening: Promise<Session>;
    try {
      opening = this.target.open(mapping);
    } catch (err) {
      opening = Promise.reject(err);
    }
    opening.then(
      (session) => {
        hold.opening = false;
        if (this.hold !== hold) {
          session.reset({ code: 'UNAVAILABLE', message: 'the app connection ended while its device moved' });
          return;
        }
        this.resume(session, mapping, hold);
      },
      (err: unknown) => {
        hold.opening = false;
        if (this.hold !== hold) return;
        this.options.log.debug({ mapping: mapping.id, agent: mapping.agentAddress, error: errorMessage(err) }, 'roaming: open on the new agent failed; trying again');
        hold.retry = setTimeout(() => {
          hold.retry = undefined;
          this.tryResume(true);
        }, RETRY_MS);
      },
    );
  }

  private resume(session: Session, mapping: Mapping, hold: Hold): void {
    this.endHold(hold);
    this.at = mapping;
    this.attach(session);
    const held = this.held;
    const bytes = this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
    let open = true;
    for (const chunk of held) open = session.write(chunk);
    this.options.stats.add('roaming_resumes', 1, this.labels);
    this.record(hold, 'resumed', where(mapping), bytes);
    this.options.log.info({ mapping: mapping.id, from: hold.from, to: where(mapping), agent: mapping.agentAddress, heldBytes: bytes, heldMs: Date.now() - hold.since }, 'roaming: resumed on the new gateway');
    if (this.ended) session.end();
    else if (open && this.wantsDrain) this.onDrain();
  }

  /** The hold's deadline passed (or its bound was overrun): the app gets the lost session's error. */
  private expire(why?: DeviceMeshError): void {
    const hold = this.hold;
    if (!hold) return;
    this.endHold(hold);
    const dropped = this.heldBytes;
    const { stats } = this.options;
    stats.add('roaming_hold_expiries', 1, this.labels);
    if (dropped > 0) stats.add('roaming_held_bytes_dropped', dropped, this.labels);
    this.record(hold, 'expired', '', dropped);
    const reason = why ? why.message : `not back on any gateway within ${hold.holdMs} ms`;
    const err = new DeviceMeshError(why?.code ?? hold.cause.code, `${hold.cause.message}; ${reason} (${dropped} held bytes dropped)`);
    this.options.log.warn({ mapping: this.at.id, from: hold.from, code: err.code, error: err.message }, 'roaming: hold ended; closing the app connection');
    this.finish(err);
  }

  private endHold(hold: Hold): void {
    clearTimeout(hold.deadline);
    clearTimeout(hold.retry);
    this.hold = undefined;
  }

  private record(hold: Hold, outcome: 'resumed' | 'expired' | 'ended', to: string, heldBytes: number): void {
    this.options.moves?.record({
      mapping: this.at.id,
      from: hold.from,
      to,
      outcome,
      cause: hold.cause.message,
      heldBytes,
      heldMs: Date.now() - hold.since,
      at: new Date().toISOString(),
    });
  }

  private finish(err: DeviceMeshError | undefined): void {
    if (this.finished) return;
    this.finished = true;
    const hold = this.hold;
    if (hold) {
      // The app went away while held: what it had sent is dropped with it, and counted.
      this.endHold(hold);
      if (this.heldBytes > 0) this.options.stats.add('roaming_held_bytes_dropped', this.heldBytes, this.labels);
      this.record(hold, 'ended', '', this.heldBytes);
    }
    this.held = [];
    this.heldBytes = 0;
    this.emit('close', err);
  }
}
