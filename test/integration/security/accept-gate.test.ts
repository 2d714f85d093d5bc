import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { AcceptGate } from '../../../src/security/accept-gate';
import { ConnectionLimiter, type LimitRefusal } from '../../../src/security/connection-limiter';
import { dialTcp as dial } from '../../helpers/processes';
import { waitFor } from '../../unit/agent/helpers';

interface Gated {
  server: net.Server;
  gate: AcceptGate;
  limiter: ConnectionLimiter;
  port: number;
  /** Sockets the server's 'connection' listener saw, and whether the gate admitted each. */
  seen: Array<{ socket: net.Socket; admitted: boolean }>;
  refused: Array<{ reason: LimitRefusal; peer: string }>;
}

async function gatedServer(perPeer: number): Promise<Gated> {
  const limiter = new ConnectionLimiter({ perPeer, total: 100, ratePerPeer: 0 });
  const server = net.createServer();
  const refused: Gated['refused'] = [];
  const gate = new AcceptGate(server, limiter, (reason, peer) => refused.push({ reason, peer }));
  const seen: Gated['seen'] = [];
  server.on('connection', (socket) => seen.push({ socket, admitted: gate.admit(socket) }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, gate, limiter, port: (server.address() as net.AddressInfo).port, seen, refused };
}

describe('security/accept-gate: connection limits at accept', () => {
  const servers: net.Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
  });

  it('refuses over-limit connections before Node makes a net.Socket of them, and counts the admitted ones until they close', async () => {
    const g = await gatedServer(2);
    servers.push(g.server);
    assert.equal(g.gate.atAccept, true, 'this Node exposes the accept callback the gate wraps');
    const a = await dial(g.port);
    const b = await dial(g.port);
    const c = await dial(g.port);
    await c.closed;
    await waitFor(() => g.seen.length === 2 && g.refused.length === 1, 'two admitted, one refused');
    assert.deepEqual(
      g.seen.map((s) => s.admitted),
      [true, true],
      "the refused connection never reached the server's 'connection' listener",
    );
    assert.equal(g.refused[0]?.reason, 'too_many_connections_from_peer');
    assert.match(g.refused[0]?.peer ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(g.limiter.connections, 2);

    const other = await dial(g.port, '127.0.0.2');
    await waitFor(() => g.seen.length === 3, 'another peer admitted');
    assert.equal(g.limiter.connections, 3);

    a.socket.destroy();
    await waitFor(() => g.limiter.connections === 2, 'the closed connection released');
    const d = await dial(g.port);
    await waitFor(() => g.seen.length === 4, 'a new connection admitted in its place');
    assert.equal(g.seen[3]?.admitted, true);
    for (const s of [b, d, other]) s.socket.destroy();
    await waitFor(() => g.limiter.connections === 0, 'every connection released');
  });

  it('on a socket it did not see accepted (no accept callback to wrap), applies the same limits to the net.Socket', async () => {
    const g = await gatedServer(1);
    servers.push(g.server);
    // A second, ungated server hands its sockets to the first one's gate: the net.Socket path.
    const plain = net.createServer((socket) => g.seen.push({ socket, admitted: g.gate.admit(socket) }));
    servers.push(plain);
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const port = (plain.address() as net.AddressInfo).port;
    const a = await dial(port);
    const b = await dial(port);
    await b.closed;
    await waitFor(() => g.seen.length === 2, 'both seen');
    assert.deepEqual(
      g.seen.map((s) => s.admitted),
      [true, false],
    );
    assert.equal(g.refused[0]?.reason, 'too_many_connections_from_peer');
    assert.ok(g.seen[1]?.socket.destroyed, 'the refused socket is destroyed');
    a.socket.destroy();
    await waitFor(() => g.limiter.connections === 0, 'the admitted one released on close');
  });
});
