import * as net from 'node:net';
import { type ConnectionOptions, FramedConnection, type OpenDecision } from '../../../src/socket-plane/connection';
import type { Session } from '../../../src/socket-plane/session';

export interface Loopback {
  client: FramedConnection;
  server: FramedConnection;
  close(): Promise<void>;
}

/** A real TCP connection on 127.0.0.1 with a socket-plane client at one end and a server at the other. */
export async function loopback(serverOptions: ConnectionOptions = {}): Promise<Loopback> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const clientSocket = net.connect(port, '127.0.0.1');
  const client = new FramedConnection(clientSocket, 'client');
  const server = new FramedConnection(await accepted, 'server', serverOptions);
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

/** Resolves with the first emission of `event`, or rejects after `ms`. */
export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string, ms = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (value: T) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

/** Opens a session from the client and accepts it on the server. */
export async function openPair(lb: Loopback): Promise<{ client: Session; server: Session }> {
  const accepted = once<OpenDecision>(lb.server, 'open').then((d) => d.accept());
  const client = await lb.client.openSession({ mappingId: 'm1', workloadId: 'app1' });
  return { client, server: await accepted };
}
