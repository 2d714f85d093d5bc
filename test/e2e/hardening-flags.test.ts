import { strict as assert } from 'node:assert';
import { AGENT_FLAGS, appLimits, SIDECAR_FLAGS, socketPlaneLimits } from '../../cli/commands/processes';
import { parseFlags } from '../../cli/flags';
import { ValidationError } from '../../src/errors';
import { PREFACE } from '../../src/socket-plane/frame';
import { dialTcp as dial, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';

describe('hardening limits as flags', function () {
  this.timeout(60_000);

  it('the agent takes the socket plane limits from its flags: a second connection from one address is refused and counted', async () => {
    const listen = await freePort();
    const admin = `127.0.0.1:${await freePort()}`;
    // No control plane: the socket plane serves regardless, and refusals need none.
    const agent = MeshProcess.start('e2e-hardening-flags-agent', [
      'agent',
      '--host-id', 'gw-limits',
      '--insecure',
      '--control-plane', `127.0.0.1:${await freePort()}`,
      '--listen', `127.0.0.1:${listen}`,
      '--admin', admin,
      '--max-connections-per-peer', '1',
      '--connection-rate', '0',
    ]);
    try {
      const first = await waitFor('the socket plane to accept', () => dial(listen).catch(() => undefined), 20_000);
      // The per-address limit counts connections that have spoken (issue 15: silent ones are pooled apart), so both send the preface.
      first.socket.write(PREFACE);
      await new Promise((r) => setTimeout(r, 100));
      const second = await dial(listen);
      second.socket.write(PREFACE);
      await second.closed;
      const metrics = await waitFor('the refusal counted', async () => {
        const r = await httpGet(`http://${admin}/stats/prometheus`).catch(() => undefined);
        return r?.body.match(/socket_plane_connections_refused(_total)?\{reason="too_many_connections_from_peer"\} (\d+)/)?.[2];
      });
      assert.equal(metrics, '1');
      assert.ok(!first.socket.destroyed, 'the first connection is still open');
      first.socket.destroy();
    } finally {
      await agent.stop();
    }
  });

  it('reads every limit flag of the agent and the sidecar into the options they start with', () => {
    const agent = parseFlags('agent', ['--host-id', 'gw', '--max-connections-per-peer', '2', '--max-connections', '30', '--connection-rate', '0', '--connection-burst', '5', '--handshake-timeout', '2s', '--preface-timeout', '3s', '--idle-timeout', '1m'], AGENT_FLAGS, {});
    assert.deepEqual(socketPlaneLimits(agent.values), {
      maxConnectionsPerPeer: 2,
      maxConnections: 30,
      connectionRatePerPeer: 0,
      connectionBurstPerPeer: 5,
      handshakeTimeoutMs: 2000,
      connection: { prefaceTimeoutMs: 3000, idleTimeoutMs: 60_000 },
    });
    const sidecar = parseFlags('sidecar', ['--workload-id', 'w', '--app-connections-per-peer', '4', '--app-connections', '8', '--app-connection-rate', '1', '--app-connection-burst', '2', '--subnegotiation-timeout', '500ms', '--grpc-preface-timeout', '2s'], SIDECAR_FLAGS, {});
    assert.deepEqual(appLimits(sidecar.values), { maxConnectionsPerPeer: 4, maxConnections: 8, connectionRatePerPeer: 1, connectionBurstPerPeer: 2, subnegotiationTimeoutMs: 500, grpcPrefaceTimeoutMs: 2000 });
    const defaults = parseFlags('sidecar', ['--workload-id', 'w'], SIDECAR_FLAGS, {});
    assert.deepEqual(appLimits(defaults.values), { maxConnectionsPerPeer: 128, maxConnections: 256, connectionRatePerPeer: 20, connectionBurstPerPeer: 128, subnegotiationTimeoutMs: 5000, grpcPrefaceTimeoutMs: 10_000 });
  });

  const bad: [string, string[], RegExp][] = [
    ['a word', ['--max-connections-per-peer', 'many'], /flag --max-connections-per-peer: "many" is not a whole number from 0 to 1000000000/],
    ['a fraction', ['--connection-rate', '2.5'], /flag --connection-rate: "2.5" is not a whole number/],
    ['a negative number', ['--connection-burst', '-3'], /flag --connection-burst needs a value/],
    ['too large a number', ['--max-connections', '99999999999'], /flag --max-connections: "99999999999" is not a whole number/],
    ['a timeout without a unit', ['--idle-timeout', '30'], /flag --idle-timeout: "30" is not a duration/],
  ];
  for (const [what, args, pattern] of bad) {
    it(`refuses ${what} for a limit with the flag named`, () => {
      assert.throws(() => parseFlags('agent', ['--host-id', 'gw', ...args], AGENT_FLAGS, {}), (err: unknown) => err instanceof ValidationError && pattern.test(err.message));
    });
  }
  it('refuses a malformed limit from the environment too', () => {
    assert.throws(() => parseFlags('sidecar', ['--workload-id', 'w'], SIDECAR_FLAGS, { DEVICEMESH_APP_CONNECTIONS: 'lots' }), /flag --app-connections: "lots" is not a whole number/);
  });
});
