import * as path from 'node:path';
import { EVENTS, Poller } from '@serialport/bindings-cpp/dist/poller';

/** A module that applies rearmEveryPoller() to a process it is preloaded into (`node --require`). */
export const REARM_PRELOAD = path.join(__dirname, 'poller-rearm-preload.js');

let applied = false;

/**
 * Works around a second bug in @serialport/bindings-cpp 13's Poller (src/poller.cpp), one that
 * agent/drivers/poller-workaround.ts does not cover: the native side ORs every event ever asked
 * for into its `events` and, when one fires, re-arms the uv_poll with that sum minus what fired.
 * Once a single write has waited for 'writable' (the device did not take a bulk write at once),
 * a 'readable' re-arms 'writable', which a pty or UART always is, which re-arms 'readable', which
 * stays true while the read runs on the threadpool: the event loop spins about ten times per read
 * (measured: 22,652 readable and as many writable events for 2,000 echoed messages, against 2,000
 * and none before the first full buffer). After each event this re-arms the uv_poll with exactly
 * the events that have a waiter. It patches the Poller class, so every port of this process gets
 * it. An event that carries an error comes with the poller stopped or destroyed: left alone.
 */
export function rearmEveryPoller(): void {
  if (applied) return;
  applied = true;
  const emit = Poller.prototype.emit;
  Poller.prototype.emit = function rearmAfter(this: Poller, event: string | symbol, ...args: unknown[]): boolean {
    const listened = emit.call(this, event, ...args);
    if ((event === 'readable' || event === 'writable') && args[0] == null) {
      this.poller.poll(
        (this.listenerCount('readable') > 0 ? EVENTS.UV_READABLE : 0) |
          (this.listenerCount('writable') > 0 ? EVENTS.UV_WRITABLE : 0) |
          (this.listenerCount('disconnect') > 0 ? EVENTS.UV_DISCONNECT : 0),
      );
    }
    return listened;
  };
}
