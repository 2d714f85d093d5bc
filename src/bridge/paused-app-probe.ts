import type * as net from 'node:net';

/** How often an app connection held paused is asked whether its app is still there. */
export const PAUSED_APP_PROBE_MS = 250;

const EMPTY = Buffer.alloc(0);

/**
 * A socket held paused (backpressure toward the device) is not read, and with nothing to write it
 * is not polled at all: an app that resets it is never noticed, and its session would hold the
 * device for ever. While `socket` is paused and has nothing waiting to be written, an empty write
 * every `intervalMs` asks the kernel, which fails it once the app has reset the connection; Node
 * then destroys the socket with that error, which ends the session. One timer per paused
 * connection, none while bytes flow.
 */
export function probeWhilePaused(socket: net.Socket, intervalMs = PAUSED_APP_PROBE_MS): void {
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    clearInterval(timer);
    timer = undefined;
  };
  const probe = (): void => {
    if (socket.destroyed || socket.writableEnded) stop();
    else if (socket.writableLength === 0) socket.write(EMPTY);
  };
  socket.on('pause', () => {
    timer ??= setInterval(probe, intervalMs);
  });
  // 'resume' is emitted a tick after resume(): by then the socket may be paused again.
  socket.on('resume', () => {
    if (!socket.isPaused()) stop();
  });
  socket.once('close', stop);
}
