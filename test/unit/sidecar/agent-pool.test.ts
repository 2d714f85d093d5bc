import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { AgentPool } from '../../../sidecar/agent-pool';
import { UnavailableError } from '../../../src/errors';
import { freePort } from '../../helpers/processes';
import { testLogger, waitFor } from '../agent/helpers';

describe('sidecar/agent-pool', () => {
  it('refuses at once while an unreachable agent is in backoff, and dials again once it is up', async () => {
    const pool = new AgentPool(testLogger());
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const first = pool.connection(address, 'gw1').openSession({ mappingId: 'm1', workloadId: 'app1' });
    await assert.rejects(first, /ECONNREFUSED/);
    assert.throws(() => pool.connection(address, 'gw1'), (err: unknown) => err instanceof UnavailableError && /unreachable; dialling again in \d+ ms/.test(err.message));

    const server = net.createServer((s) => s.on('data', () => undefined));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const dialled = (): boolean => {
        try {
          pool.connection(address, 'gw1');
          return true;
        } catch {
          return false;
        }
      };
      await waitFor(dialled, 'the backoff to end', 10_000);
      const session = pool.connection(address, 'gw1').openSession({ mappingId: 'm1', workloadId: 'app1' });
      await waitFor(() => !pool.connection(address, 'gw1').isClosed, 'a live connection');
      void session.catch(() => undefined);
    } finally {
      pool.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
