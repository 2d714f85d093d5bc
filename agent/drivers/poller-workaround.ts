/** libuv's poll flags, as @serialport/bindings-cpp's Poller uses them. */
const UV_READABLE = 1;
const UV_WRITABLE = 2;
const UV_DISCONNECT = 4;

/** The part of bindings-cpp's (unexported) Poller this touches. */
interface PollerLike {
  poll(eventFlag?: number): void;
  emit(event: string | symbol, ...args: unknown[]): boolean;
  listenerCount(event: string): number;
  /** The native FDPoller. */
  poller: { poll(events: number): void };
}

/**
 * Works around two bugs in @serialport/bindings-cpp 13's Poller, for one open port:
 *
 * 1. Each poll() restarts the fd's one uv_poll with only the newest event, so a read waiting for
 *    'readable' is forgotten as soon as a write starts waiting for 'writable', and the other way
 *    round: with a device whose output drains only while its input is read (a pty, a USB CDC
 *    device, RTS/CTS flow control) a busy full-duplex line stalls for good. Polling for every
 *    event that still has a waiter keeps both.
 * 2. The native side keeps every event it was once asked for and, when one fires, re-arms with
 *    the rest: once a single write has waited for 'writable' (a full device buffer), every read
 *    re-arms 'writable', which a tty always is, and the event loop spins about ten times per read
 *    (measured in bench/data-path: 22,652 wake-ups for 2,000 echoed messages instead of 2,000).
 *    After each event the uv_poll is re-armed with exactly the events that have a waiter. An
 *    event that carries an error comes with the poller stopped or destroyed: left alone.
 *
 * `port` is the binding's open port (SerialPortStream.port); ports without a Poller (the
 * simulated one, Windows) are left alone. Remove once bindings-cpp fixes both.
 */
export function pollForEveryWaiter(port: unknown): void {
  const poller = (port as { poller?: Partial<PollerLike> } | undefined)?.poller;
  if (typeof poller?.poll !== 'function' || typeof poller.listenerCount !== 'function' || typeof poller.poller?.poll !== 'function') return;
  const target = poller as PollerLike;
  const waiting = (): number =>
    (target.listenerCount('readable') > 0 ? UV_READABLE : 0) |
    (target.listenerCount('writable') > 0 ? UV_WRITABLE : 0) |
    (target.listenerCount('disconnect') > 0 ? UV_DISCONNECT : 0);
  const poll = target.poll.bind(target);
  // Called just before the new waiter is added, so its own event comes in through eventFlag.
  target.poll = (eventFlag = 0): void => poll(eventFlag | (waiting() & (UV_READABLE | UV_WRITABLE)));
  const emit = target.emit.bind(target);
  target.emit = (event: string | symbol, ...args: unknown[]): boolean => {
    const listened = emit(event, ...args);
    if ((event === 'readable' || event === 'writable') && args[0] == null) target.poller.poll(waiting());
    return listened;
  };
}
