import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startAgent } from '../../../agent/main';
import { ControlPlaneClient } from '../../../cli/control-plane-client';
import { type RunningControlPlane, startControlPlane } from '../../../control-plane/main';
import type { DeviceMeshError } from '../../../src/errors';
import type { ApplyRequest, ListBindingsResponse, ListEndpointsResponse } from '../../../src/proto/types';
import { FramedConnection } from '../../../src/socket-plane/connection';
import { parseHostPort } from '../../../src/util/address';
import { testLogger, waitFor } from '../../unit/agent/helpers';

const BINDING: ApplyRequest = {
  policies: [],
  bindings: [
    {
      name: 'modem',
      workload: 'app1',
      device: { host: 'gw1', path: 'sim:modem0', id: '' },
      virtual: { workloadId: 'app1', name: 'modem0', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7999' },
      policy: null,
      policyRef: '',
      settings: {},
      serial: null,
    },
  ],
};

describe('an agent that shuts down', function () {
  this.timeout(60_000);
  let dir: string;
  let cp: RunningControlPlane;
  let client: ControlPlaneClient;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-agent-shutdown-'));
    cp = await startControlPlane({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', dataDir: dir, log: testLogger(), insecure: true });
    client = new ControlPlaneClient(cp.grpcAddress, 10_000, { insecure: true });
  });
  after(async () => {
    client.close();
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const binding = async (): Promise<{ phase: string; message: string; mappingId: string }> => {
    const list = await client.call<ListBindingsResponse>('Bindings', 'List', {});
    const status = list.bindings.find((b) => b.binding?.name === 'modem');
    assert.ok(status);
    return { phase: status.phase, message: status.message, mappingId: status.mappingId };
  };

  it('marks its devices absent (the binding goes PENDING) and ends its sessions with a clear error', async () => {
    const agent = await startAgent({
      hostId: 'gw1',
      controlPlane: cp.grpcAddress,
      listen: '127.0.0.1:0',
      watch: [],
      simulate: ['modem'],
      admin: '127.0.0.1:0',
      security: { insecure: true },
      log: testLogger(),
    });
    await client.call('Bindings', 'Apply', BINDING);
    await waitFor(async () => (await binding()).phase === 'BINDING_PHASE_MAPPED', 'the binding MAPPED', 20_000);
    const { mappingId } = await binding();

    // A session as a sidecar opens it, once the agent has the mapping.
    const { host, port } = parseHostPort(agent.socketPlaneAddress);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(s));
      s.once('error', reject);
    });
    const connection = new FramedConnection(socket, 'client');
    let session: Awaited<ReturnType<FramedConnection['openSession']>> | undefined;
    await waitFor(async () => {
      session = await connection.openSession({ mappingId, workloadId: 'app1' }).catch(() => undefined);
      return session !== undefined;
    }, 'a session on the modem', 20_000);
    const ended = new Promise<DeviceMeshError | undefined>((resolve) => session?.once('close', (err?: DeviceMeshError) => resolve(err)));

    await agent.close();

    const err = await ended;
    assert.ok(err, 'the session ends with an error, not a clean close');
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, /agent .*shutting down/);
    const endpoints = await client.call<ListEndpointsResponse>('Registry', 'ListEndpoints', { hostId: 'gw1' });
    assert.equal(endpoints.endpoints.find((e) => e.path === 'sim:modem0')?.state, 'ENDPOINT_STATE_ABSENT');
    const after = await binding();
    assert.equal(after.phase, 'BINDING_PHASE_PENDING');
    assert.match(after.message, /^device .*sim:modem0.* is absent$/, after.message);
    connection.destroy();
  });
});
