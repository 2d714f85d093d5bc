/** libuv's poll flags, as @serialport/bindings-cpp's Poller uses them. */
const UV_READABLE = 1;
const UV_WRITABLE = 2;

/** The part of bindings-cpp's (unexported) Poller this touches. */
interface PollerLike {
  poll(eventFlag?: number): void;
  listenerCount(event: string): number;
}

/**
 * Works around a bug in @serialport/bindings-cpp 13's Poller: each poll() restarts the fd's one
 * uv_poll with only the newest event, so a read waiting for 'readable' is forgotten as soon as a
 * write starts waiting for 'writable', and the other way round. With a device whose output
 * drains only while its input is read (a pty, a USB CDC device, RTS/CTS flow control), a busy
 * full-duplex line then stalls for good. Polling for every event that still has a waiter keeps
 * both. `port` is the binding's open port (SerialPortStream.port); ports without a Poller (the
 * simulated one, Windows) are left alone. Remove once bindings-cpp polls the union itself.
 */
export function pollForEveryWaiter(port: unknown): void {
  const poller = (port as { poller?: Partial<PollerLike> } | undefined)?.poller;
  if (typeof poller?.poll !== 'function' || typeof poller.listenerCount !== 'function') return;
  const target = poller as PollerLike;
  const poll = target.poll.bind(target);
  target.poll = (eventFlag = 0): void => {
    // Called just before the new waiter is added, so its own event comes in through eventFlag.
    let events = eventFlag;
    if (target.listenerCount('readable') > 0) events |= UV_READABLE;
    if (target.listenerCount('writable') > 0) events |= UV_WRITABLE;
    poll(events);
  };
}
