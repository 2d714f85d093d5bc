import type { Duplex } from 'node:stream';
import { errorCode, errorMessage } from '../errors';
import type { ConsumerSession } from './consumer-session';

/** What a pipe tells its owner about bytes and sessions its stream left behind. */
export interface PipeOptions {
  /** Bytes from the session dropped because the stream is gone (their credit went back). */
  dropped?: (bytes: number) => void;
  /**
   * Once the stream has closed, the session has this long to finish (its last bytes out, the peer's
   * CLOSE in) before it is reset: nobody is left to wait for it, and the peer may be holding a
   * device for it. Unset: the session ends only as the peer ends it.
   */
  closeWithinMs?: number;
  /** The session was reset because it had not finished within closeWithinMs. */
  abandoned?: () => void;
}

/**
 * Starts the closeWithinMs clock of a session whose stream has gone: the session is reset unless it
 * has closed by then. The caller clears the timer when the session closes.
 */
export function closeWithin(session: ConsumerSession, options: PipeOptions): NodeJS.Timeout | undefined {
  const ms = options.closeWithinMs;
  if (ms === undefined || session.closed) return undefined;
  return setTimeout(() => {
    options.abandoned?.();
    session.reset({ code: 'UNAVAILABLE', message: `the app went away and its session had not finished ${ms} ms later` });
  }, ms);
}

/**
 * Joins a session and a byte stream (an app's TCP socket, a device) both ways with backpressure:
 * the stream pauses while the session has no send credit, and the session grants credit only for
 * bytes the stream has accepted. Ending either side half-closes the other. Once the stream is gone,
 * whatever the session still delivers is dropped with its credit given back, so the peer is never
 * left waiting on a window that no one will open.
 */
export function pipeSession(session: ConsumerSession, stream: Duplex, options: PipeOptions = {}): void {
  let unflushed = 0;
  let gone = false;
  let closeTimer: NodeJS.Timeout | undefined;

  const drop = (n: number): void => {
    session.consumed(n);
    options.dropped?.(n);
  };
  const onStreamData = (chunk: Buffer): void => {
    if (!session.write(chunk)) stream.pause();
  };
  const onSessionDrain = (): void => {
    stream.resume();
  };
  const onSessionData = (chunk: Buffer): void => {
    if (gone || stream.destroyed) drop(chunk.length);
    else if (stream.write(chunk)) session.consumed(chunk.length);
    else unflushed += chunk.length;
  };
  const onStreamDrain = (): void => {
    const n = unflushed;
    unflushed = 0;
    if (n > 0) session.consumed(n);
  };
  const onStreamEnd = (): void => session.end();
  const onSessionEnd = (): void => {
    if (!stream.destroyed) stream.end();
  };
  const onStreamError = (err: Error): void =>
    session.reset({ code: errorCode(err, 'UNAVAILABLE'), message: errorMessage(err) });
  const onStreamClose = (): void => {
    gone = true;
    // Written but never flushed: a finished stream delivered them, a destroyed one threw them away.
    const n = unflushed;
    unflushed = 0;
    if (n > 0) {
      if (stream.writableFinished) session.consumed(n);
      else drop(n);
    }
    if (session.closed) return;
    session.end();
    closeTimer = closeWithin(session, options);
  };
  const onSessionClose = (err: Error | undefined): void => {
    clearTimeout(closeTimer);
    stream.off('data', onStreamData);
    stream.off('drain', onStreamDrain);
    stream.off('end', onStreamEnd);
    stream.off('error', onStreamError);
    stream.off('close', onStreamClose);
    if (err) stream.destroy();
    else if (!stream.destroyed) stream.end();
  };

  stream.on('data', onStreamData);
  stream.on('drain', onStreamDrain);
  stream.on('end', onStreamEnd);
  stream.on('error', onStreamError);
  stream.on('close', onStreamClose);
  session.on('drain', onSessionDrain);
  session.on('data', onSessionData);
  session.on('end', onSessionEnd);
  session.once('close', onSessionClose);
  // A stream handed over paused (e.g. while its session was opening) would never flow otherwise.
  stream.resume();
}
