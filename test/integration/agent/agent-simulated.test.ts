import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { type RunningAgent, startAgent } from '../../../agent/main';
import { SIMULATED_MODEM_IDENTITY } from '../../../agent/drivers/simulated-modem';
import { FramedConnection } from '../../../src/socket-plane/connection';
import type { Session } from '../../../src/socket-plane/session';
import { parseHostPort } from '../../../src/util/address';
import { freePort } from '../../helpers/processes';
import { testLogger, waitFor } from '../../unit/agent/helpers';
import { FakeControlPlane, mapping } from './fake-control-plane';


function connect(address: string): Promise<FramedConnection> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => resolve(new FramedConnection(socket, 'client')));
    socket.once('error', reject);
  });
}

/** Sends `text` on the session and resolves with what came back once `until` appeared. */
function converse(session: Session, text: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no ${JSON.stringify(until)} in ${JSON.stringify(got)}`)), 5000);
    const onData = (chunk: Buffer): void => {
      session.consumed(chunk.length);
      got += chunk.toString('latin1');
      if (!got.includes(until)) return;
      clearTimeout(timer);
      session.off('data', onData);
      resolve(got);
    };
    session.on('data', onData);
    session.write(Buffer.from(text, 'latin1'));
  });
}

describe('agent with a simulated modem and a control plane that comes and goes', function () {
  this.timeout(60_000);
  let port: number;
  let cp: FakeControlPlane | undefined;
  let agent: RunningAgent;

  before(async () => {
    port = await freePort();
    agent = await startAgent({
      hostId: 'demo-gw',
      controlPlane: `127.0.0.1:${port}`,
      listen: '127.0.0.1:0',
      watch: [],
      simulate: ['modem'],
      admin: '127.0.0.1:0',
      // The fake control plane serves plaintext and has no Identity service.
      security: { insecure: true },
      log: testLogger(),
    });
  });

  after(async () => {
    await agent?.close();
    await cp?.close();
  });

  it('starts while the control plane is down, then registers and serves once it is up', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const m = mapping({ id: 'demo', workloadId: 'demo-app', hostId: 'demo-gw', devicePath: 'sim:modem0' });
    cp = await FakeControlPlane.start(port, [m]);
    await waitFor(() => cp?.registered.some((e) => e.path === 'sim:modem0') ?? false, 'the simulated modem registered', 20_000);
    assert.deepEqual(cp.registered.find((e) => e.path === 'sim:modem0')?.labels, { simulated: 'modem' });
    await waitFor(() => cp?.acked('1') ?? false, 'the mappings applied', 20_000);

    const client = await connect(agent.socketPlaneAddress);
    const session = await client.openSession({ mappingId: 'demo', workloadId: 'demo-app' });
    assert.equal(await converse(session, 'AT\r', 'OK\r\n'), 'AT\r\r\nOK\r\n');
    assert.equal(await converse(session, 'ATI\r', 'OK\r\n'), `ATI\r\r\n${SIMULATED_MODEM_IDENTITY}\r\n\r\nOK\r\n`);
    client.destroy();
  });

  it('registers its devices again with a control plane that restarted', async () => {
    await cp?.close();
    cp = await FakeControlPlane.start(port, []);
    await waitFor(() => cp?.registered.some((e) => e.path === 'sim:modem0') ?? false, 'the re-registration', 20_000);
  });
});
