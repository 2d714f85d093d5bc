import * as net from 'node:net';
import { AcceptGate } from '../../src/security/accept-gate';
import { ConnectionLimiter } from '../../src/security/connection-limiter';

/**
 * Where a refused connection is turned away: on the net.Socket Node builds for it (what Node's
 * public API offers, the baseline), or on the accepted handle by the AcceptGate the agent's socket
 * plane and the sidecar's app listeners use.
 */
export type RefusalMode = 'on-socket' | 'at-accept';
export const REFUSAL_MODES: readonly RefusalMode[] = ['on-socket', 'at-accept'];

/** The socket plane's defaults: 16 connections per peer, 1024 in all, 10 new ones a second after a burst of 64. */
const LIMITS = { perPeer: 16, total: 1024, ratePerPeer: 10, burstPerPeer: 64 };

/** An echo server behind the socket plane's connection limits, refusing in `mode`; counts its refusals. */
export class GatedEcho {
  refused = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(mode: RefusalMode): Promise<GatedEcho> {
    const limiter = new ConnectionLimiter(LIMITS);
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const echo = new GatedEcho(server, (server.address() as net.AddressInfo).port);
    const gate = mode === 'at-accept' ? new AcceptGate(server, limiter, () => (echo.refused += 1)) : undefined;
    server.on('connection', (socket: net.Socket) => {
      if (gate) {
        if (!gate.admit(socket)) return;
      } else if (limiter.admit(socket)) {
        echo.refused += 1;
        socket.destroy();
        return;
      }
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
    });
    if (gate && !gate.atAccept) throw new Error('this Node offers no accept callback for the gate to wrap');
    return echo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
