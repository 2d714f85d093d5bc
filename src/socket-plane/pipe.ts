import type { Duplex } from 'node:stream';
import { DeviceMeshError, errorMessage } from '../errors';
import type { Session } from './session';

/**
 * Joins a session and a byte stream (an app's TCP socket, a device) both ways with backpressure:
 * the stream pauses while the session has no send credit, and the session grants credit only for
 * bytes the stream has accepted. Ending either side half-closes the other.
 */
export function pipeSession(session: Session, stream: Duplex): void {
  let unflushed = 0;
  /** The session's chunks of this tick (the DATA frames of one socket read): the first is written at once, the rest corked. */
  let inBatch = false;
  let corked = false;

  const endBatch = (): void => {
    inBatch = false;
    if (!corked) return;
    corked = false;
    stream.uncork();
  };

  const onStreamData = (chunk: Buffer): void => {
    if (!session.write(chunk)) stream.pause();
  };
  const onSessionDrain = (): void => {
    stream.resume();
  };
  const onSessionData = (chunk: Buffer): void => {
    if (stream.destroyed) return;
    // One write (writev) for the rest of the batch instead of one per frame; a lone chunk goes out unchanged.
    if (!inBatch) {
      inBatch = true;
      process.nextTick(endBatch);
    } else if (!corked) {
      corked = true;
      stream.cork();
    }
    if (stream.write(chunk)) session.consumed(chunk.length);
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
    session.reset({ code: err instanceof DeviceMeshError ? err.code : 'UNAVAILABLE', message: errorMessage(err) });
  const onStreamClose = (): void => {
    if (!session.closed) session.end();
  };
  const onSessionClose = (err: Error | undefined): void => {
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
