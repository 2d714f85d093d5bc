import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppClient } from '../helpers/app-client';
import { EchoResponder } from '../helpers/echo-responder';
import { cli, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

/**
 * The agent closes a socket-plane connection without sessions this soon, so that every app request
 * of a case needs a new dial through the neighbour's connections (as in the issue, once the link had idle-closed).
 */
const IDLE_TIMEOUT = '250ms';
/** Requests per case, each over a connection dialled for it. */
const REQUESTS = 10;

/** A connection the agent closes this soon after the connect was refused by a limit: tried again this much later. */
const REFUSED_WITHIN_MS = 50;
const RETRY_REFUSED_MS = 20;

/**
 * A neighbour on the sidecar's address (127.0.0.1) keeping `count` TCP connections to the agent's
 * socket plane open without ever starting TLS: one the agent closes is opened again at once, one it
 * refused RETRY_REFUSED_MS later, so it takes every slot and rate token the agent frees.
 */
class IdleHolder {
  private stopped = false;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly port: number,
    count: number,
  ) {
    for (let i = 0; i < count; i += 1) this.dial();
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
  }

  private dial(): void {
    if (this.stopped) return;
    const s = net.connect({ port: this.port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    const at = Date.now();
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => {
      this.sockets.delete(s);
      if (Date.now() - at < REFUSED_WITHIN_MS) setTimeout(() => this.dial(), RETRY_REFUSED_MS);
      else this.dial();
    });
  }
}

/**
 * Issue 15, finding 2: connections that never start TLS, from the sidecar's own address, must not
 * keep the sidecar from reconnecting to a restarted agent, nor its app's requests from succeeding.
 */
describe('e2e: idle pre-TLS connections from the sidecar\'s address do not lock the sidecar out', function () {
  this.timeout(240_000);

  let tmp: string;
  let cp: string;
  let ports: Record<'cp' | 'agent' | 'agentAdmin' | 'sidecarAdmin' | 'echo', number>;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  let sidecar: MeshProcess;
  let pty: PtyPair;
  let echo: EchoResponder;

  const startAgent = (): MeshProcess =>
    MeshProcess.start('e2e-lockout-agent', [
      'agent', '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${ports.agent}`,
      '--watch', path.join(tmp, 'tty*'), '--admin', `127.0.0.1:${ports.agentAdmin}`, '--idle-timeout', IDLE_TIMEOUT,
    ]);

  /** A counter of the agent's admin stats, summed over its label sets (0 before its first count). */
  const agentCounter = async (name: string, labels = ''): Promise<number> => {
    const body = (await httpGet(`http://127.0.0.1:${ports.agentAdmin}/stats/prometheus`)).body;
    return body
      .split('\n')
      .filter((l) => l.startsWith(`devicemesh_${name}`) && l.includes(labels))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  };

  /** One app request: a fresh app connection whose bytes come back from the device. */
  const request = async (n: number): Promise<boolean> => {
    const app = await AppClient.connect(ports.echo).catch(() => undefined);
    if (!app) return false;
    try {
      const data = Buffer.from(`request ${n}\r\n`);
      return (await app.roundTrip(data, 3000).catch(() => Buffer.alloc(0))).equals(data);
    } finally {
      app.close();
    }
  };

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: needs socat (bash scripts/install-test-deps.sh)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-lockout-'));
    ports = { cp: await freePort(), agent: await freePort(), agentAdmin: await freePort(), sidecarAdmin: await freePort(), echo: await freePort() };
    cp = `127.0.0.1:${ports.cp}`;
    pty = await PtyPair.create(path.join(tmp, 'ttyEcho'), path.join(tmp, 'peerEcho'));
    echo = await EchoResponder.open(pty.peer);
    controlPlane = MeshProcess.start('e2e-lockout-control-plane', ['control-plane', '--listen', cp, '--admin', '127.0.0.1:0', '--data-dir', path.join(tmp, 'data')]);
    agent = startAgent();
    sidecar = MeshProcess.start('e2e-lockout-sidecar', ['sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${ports.sidecarAdmin}`]);
    const file = path.join(tmp, 'bindings.yaml');
    fs.writeFileSync(file, `kind: Binding\nname: echo\nworkload: app1\ndevice: { host: gw1, path: ${pty.device} }\nvirtual: { name: echo, protocol: raw, listen: 127.0.0.1:${ports.echo} }\n`);
    await waitFor('the agent to register the pty', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as { endpoints: Array<{ state: string }> }).endpoints.some((e) => e.state === 'ENDPOINT_STATE_PRESENT');
    }, 90_000);
    const applied = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor('a first app request answered', () => request(0), 60_000);
  });

  after(async () => {
    await Promise.all([sidecar?.stop(), agent?.stop(), controlPlane?.stop()]);
    await echo?.close();
    await pty?.remove();
  });

  for (const count of [64, 300]) {
    it(`${count} idle pre-TLS connections from 127.0.0.1: the sidecar reconnects to the restarted agent and every app request succeeds, each over a new connection`, async () => {
      await agent.stop('SIGKILL');
      agent = startAgent();
      const holder = new IdleHolder(ports.agent, count);
      try {
        // The neighbour holds its connections from the moment the agent listens again.
        await waitFor('the restarted agent listening', () => new Promise<boolean>((resolve) => {
          const s = net.connect(ports.agent, '127.0.0.1', () => (s.destroy(), resolve(true)));
          s.on('error', () => resolve(false));
        }), 60_000);
        await new Promise((r) => setTimeout(r, 2000));
        const started = Date.now();
        await waitFor('the sidecar to reconnect and an app request answered', () => request(1), 30_000);
        console.log(`      reconnected ${Date.now() - started} ms after the neighbour took its connections`);
        const idleClosedAbove = (n: number): Promise<boolean> =>
          waitFor("the sidecar's connection to idle-close", async () => (await agentCounter('socket_plane_idle_closed')) > n, 10_000);
        await idleClosedAbove(0);
        let answered = 0;
        for (let n = 0; n < REQUESTS; n += 1) {
          // The last request's connection has idle-closed: this one is dialled anew, through the neighbour's.
          const closed = await agentCounter('socket_plane_idle_closed');
          if (!(await request(n + 2))) continue;
          answered += 1;
          await idleClosedAbove(closed);
        }
        const evicted = await agentCounter('socket_plane_connections_refused', 'reason="silent_evicted"');
        const timedOut = await agentCounter('socket_plane_connections_refused', 'reason="silent_timeout"');
        console.log(`      ${answered} of ${REQUESTS} answered, each over a new connection; the agent closed ${evicted} silent connections by eviction, ${timedOut} at the deadline`);
        assert.equal(answered, REQUESTS, `${answered} of ${REQUESTS} app requests answered`);
        assert.ok(evicted + timedOut > 0, "the neighbour's silent connections were there all along");
      } finally {
        holder.stop();
      }
    });
  }
});
