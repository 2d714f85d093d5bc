import type * as net from 'node:net';
import type { Logger } from '../log';
import type { Mapping } from '../proto/types';
import { type PipeOptions, pipeSession } from '../socket-plane/pipe';
import type { ConsumerSession } from '../socket-plane/consumer-session';
import type { Stats } from '../telemetry/stats';

/** What a bridge may use besides the two ends. */
export interface BridgeContext {
  mapping: Mapping;
  stats: Stats;
  log: Logger;
  /** RFC 2217: a Telnet subnegotiation left open longer than this closes the connection. */
  subnegotiationTimeoutMs?: number;
}

/** A client that starts IAC SB and never sends IAC SE holds its connection this long at most. */
export const DEFAULT_SUBNEGOTIATION_TIMEOUT_MS = 5_000;

/**
 * Once its app has gone, a session has this long to finish before it is reset: the agent frees an
 * exclusive device only when the session ends, and the next app's OPEN waits at most 1 s for it.
 */
export const APP_GONE_CLOSE_MS = 250;

/**
 * What a bridge does for an app that has gone: device bytes for it are dropped with their credit
 * returned, counted in `app_gone_dropped_bytes{mapping}`, and a session still open APP_GONE_CLOSE_MS
 * later is reset, counted in `app_gone_sessions_reset{mapping}`.
 */
export function appGoneOptions(ctx: BridgeContext): Required<PipeOptions> {
  const labels = { mapping: ctx.mapping.id };
  const dropped = ctx.stats.counter('app_gone_dropped_bytes', labels);
  const reset = ctx.stats.counter('app_gone_sessions_reset', labels);
  return {
    dropped: (n) => dropped.add(n),
    closeWithinMs: APP_GONE_CLOSE_MS,
    abandoned: () => {
      reset.add(1);
      ctx.log.info(labels, 'the app went away but its session did not finish; reset it');
    },
  };
}

/**
 * Joins one app connection to its device session, speaking the mapping's virtual protocol on the
 * app side. It owns both from then on: it ends the session when the app goes and closes the app
 * connection when the session ends.
 */
export type SessionBridge = (app: net.Socket, session: ConsumerSession, ctx: BridgeContext) => void;

/** RAW: the app's bytes are the device's bytes, both ways, with backpressure. */
export const rawBridge: SessionBridge = (app, session, ctx) => pipeSession(session, app, appGoneOptions(ctx));
