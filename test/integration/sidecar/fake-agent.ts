import * as net from 'node:net';
import { FramedConnection, type OpenDecision } from '../../../src/socket-plane/connection';
import type { ErrorPayload, OpenRequest } from '../../../src/socket-plane/control-messages';
import type { Session } from '../../../src/socket-plane/session';

/** Decides on an OPEN: undefined accepts, an error payload refuses. */
export type OpenPolicy = (request: OpenRequest) => ErrorPayload | undefined;

/**
 * A socket-plane server that accepts OPENs and echoes every session's bytes back through the
 * session API, with flow control: credit is returned only once the echo has been sent on.
 */
export class FakeAgent {
  readonly opens: OpenRequest[] = [];
  readonly sessions = new Set<Session>();
  private readonly sockets = new Set<net.Socket>();
  policy: OpenPolicy = () => undefined;

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
  ) {
    server.on('connection', (socket: net.Socket) => this.onConnection(socket));
  }

  /** Listens on 127.0.0.1:`port` (0 = any free port). */
  static async start(port = 0): Promise<FakeAgent> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return new FakeAgent(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Stops listening and drops every connection, as a crashed agent would. */
  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const connection = new FramedConnection(socket, 'server');
    connection.on('open', (decision: OpenDecision) => {
      this.opens.push(decision.request);
      const refusal = this.policy(decision.request);
      if (refusal) decision.refuse(refusal);
      else this.echo(decision.accept());
    });
  }

  private echo(session: Session): void {
    this.sessions.add(session);
    let unacknowledged = 0;
    session.on('data', (chunk: Buffer) => {
      if (session.write(chunk)) session.consumed(chunk.length);
      else unacknowledged += chunk.length;
    });
    session.on('drain', () => {
      session.consumed(unacknowledged);
      unacknowledged = 0;
    });
    session.on('end', () => session.end());
    session.once('close', () => this.sessions.delete(session));
  }
}
