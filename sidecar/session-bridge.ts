import type * as net from 'node:net';
import type { Logger } from '../src/log';
import type { Mapping } from '../src/proto/types';
import { pipeSession } from '../src/socket-plane/pipe';
import type { Session } from '../src/socket-plane/session';
import type { Stats } from '../src/telemetry/stats';

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
 * Joins one app connection to its device session, speaking the mapping's virtual protocol on the
 * app side. It owns both from then on: it ends the session when the app goes and closes the app
 * connection when the session ends.
 */
export type SessionBridge = (app: net.Socket, session: Session, ctx: BridgeContext) => void;

/** RAW: the app's bytes are the device's bytes, both ways, with backpressure. */
export const rawBridge: SessionBridge = (app, session) => pipeSession(session, app);
