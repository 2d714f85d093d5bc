import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { DeviceInventory } from '../../../agent/device-inventory';
import { MappingTable } from '../../../agent/mapping-table';
import { SocketPlaneServer } from '../../../agent/socket-plane-server';
import { socketPlaneClientOptions } from '../../../src/security/socket-plane-tls';
import { parseSpiffeId } from '../../../src/security/spiffe-id';
import { Stats } from '../../../src/telemetry/stats';
import { RotatingTlsIdentity, TestCa } from '../../helpers/test-pki';
import { testLogger, waitFor } from '../../unit/agent/helpers';

/** Issue 15, finding 2: after mTLS a connection counts against its identity; silent ones never crowd out a client that speaks. */
describe('security: the socket plane sorts connections by what they have sent', function () {
  this.timeout(30_000);
  const log = testLogger();
  const stats = new Stats();
  let server: SocketPlaneServer;
  let devices: DeviceInventory;
  let ca: TestCa;
  let port: number;
  const sockets: net.Socket[] = [];

  before(async () => {
    ca = await TestCa.create();
    devices = new DeviceInventory(() => {
      throw new Error('no device is opened in this test');
    });
    server = new SocketPlaneServer({
      listen: '127.0.0.1:0',
      hostId: 'gw1',
      mappings: new MappingTable('gw1'),
      devices,
      stats,
      log,
      tls: new RotatingTlsIdentity(await ca.issue('gw1', { kind: 'host' })),
      maxConnectionsPerIdentity: 2,
      maxSilentPerPeer: 4,
      silentGraceMs: 100,
    });
    port = Number((await server.listen()).split(':')[1]);
  });

  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  after(async () => {
    await server?.close();
    await devices?.close({ code: 'UNAVAILABLE', message: 'test over' });
  });

  async function dialTls(material: Awaited<ReturnType<TestCa['issue']>>): Promise<tls.TLSSocket> {
    const socket = tls.connect({ host: '127.0.0.1', port, ...socketPlaneClientOptions(material, parseSpiffeId('spiffe://devicemesh.local/host/gw1')) });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    return socket;
  }

  it('refuses an identity its third authenticated connection, counted, while another identity from the same address connects', async () => {
    const app1 = await ca.issue('app1');
    await dialTls(app1);
    await dialTls(app1);
    const third = await dialTls(app1);
    third.on('error', () => undefined);
    await waitFor(() => stats.get('socket_plane_connections_refused', { reason: 'too_many_connections_from_identity' }) === 1, "app1's third connection to be refused");
    const other = await dialTls(await ca.issue('app2'));
    assert.equal(other.destroyed, false, 'another identity on the same address is not counted with app1');
  });

  it('evicts the oldest silent connections for newcomers past the per-address pool, and a client that speaks still completes mTLS', async () => {
    const evictedBefore = stats.get('socket_plane_connections_refused', { reason: 'silent_evicted' });
    for (let i = 0; i < 12; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 150));
    const client = await dialTls(await ca.issue('app3'));
    assert.equal(client.destroyed, false);
    await waitFor(() => stats.get('socket_plane_connections_refused', { reason: 'silent_evicted' }) > evictedBefore, 'silent connections to be evicted');
  });
});
