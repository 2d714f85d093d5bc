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

  const onStreamData = (chunk: Buffer): void => {
    if (!session.write(chunk)) stream.pause();
  };
  const onSessionDrain = (): void => {
    stream.resume();
  };
  const onSessionData = (chunk: Buffer): void => {
    if (stream.destroyed) return;
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
