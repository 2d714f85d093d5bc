import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { DeviceInventory } from '../../../agent/device-inventory';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { SimulatedModemBinding, type SimulatedModemPort } from '../../../agent/drivers/simulated-modem';
import { MappingTable } from '../../../agent/mapping-table';
import { applyMappings } from '../../helpers/apply-mappings';
import { SocketPlaneServer } from '../../../agent/socket-plane-server';
import { AgentPool } from '../../../sidecar/agent-pool';
import { DeviceMeshError } from '../../../src/errors';
import type { TlsMaterial } from '../../../src/security/tls-identity';
import { FramedConnection } from '../../../src/socket-plane/connection';
import type { Session } from '../../../src/socket-plane/session';
import { Stats } from '../../../src/telemetry/stats';
import { RotatingTlsIdentity, serialOf, TestCa } from '../../helpers/test-pki';
import { recordingLogger, waitFor } from '../../unit/agent/helpers';
import { mapping } from './fake-control-plane';

/** The simulated modems, counting every open the driver makes: a refused session must make none. */
class CountingModems extends SimulatedModemBinding {
  opens = 0;

  override open(options: Parameters<SimulatedModemBinding['open']>[0]): Promise<SimulatedModemPort> {
    this.opens += 1;
    return super.open(options);
  }
}

/** A session's received bytes as text, credit given back as they arrive. */
function reader(session: Session): { text(): string } {
  let text = '';
  session.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    session.consumed(chunk.length);
  });
  return { text: () => text };
}

async function modemAnswers(session: Session, got: { text(): string }): Promise<void> {
  const before = got.text().length;
  session.write(Buffer.from('AT\r'));
  await waitFor(() => got.text().slice(before).includes('OK\r\n'), 'the modem to answer OK');
}

/**
 * Acceptance 1 and 2 of issue 7 on the socket plane, over real TLS sockets with a test CA: every
 * peer that is not the mapping's workload is refused with a logged reason before its device is
 * opened; certificates rotate under a live session, which carries on, while new connections
 * present the new certificates.
 */
describe('agent: socket plane over mTLS — authentication, authorization, rotation', function () {
  this.timeout(30_000);
  const modems = new CountingModems(['modem0', 'modem1', 'modem2']);
  const stats = new Stats();
  const { log, records } = recordingLogger();
  let ca: TestCa;
  let otherCa: TestCa;
  let agentIdentity: RotatingTlsIdentity;
  let app1: TlsMaterial;
  let devices: DeviceInventory;
  let server: SocketPlaneServer;
  let address: string;
  let port: number;
  const open: Array<{ destroy(): void }> = [];

  before(async () => {
    ca = await TestCa.create();
    otherCa = await TestCa.create('another CA');
    agentIdentity = new RotatingTlsIdentity(await ca.issue('gw1', { kind: 'host' }));
    app1 = await ca.issue('app1');
    const driver = new SerialDriver(modems);
    const mappings = new MappingTable('gw1');
    devices = new DeviceInventory((device, onConfiguration) => ({ path: device.path, driver, stats, log, onConfiguration }));
    for (const name of ['modem0', 'modem1', 'modem2']) {
      devices.add({ path: `sim:${name}`, deviceId: `sim:${name}`, kind: 'DEVICE_KIND_SERIAL', capabilities: ['serial'], labels: {} });
    }
    server = new SocketPlaneServer({ listen: '127.0.0.1:0', hostId: 'gw1', mappings, devices, stats, log, tls: agentIdentity });
    address = await server.listen();
    port = Number(address.split(':')[1]);
    await applyMappings(
      mappings,
      devices,
      [
        mapping({ id: 'm-app1', devicePath: 'sim:modem0', workloadId: 'app1', agentAddress: address }),
        mapping({ id: 'm-app1b', devicePath: 'sim:modem1', workloadId: 'app1', agentAddress: address }),
        mapping({ id: 'm-app2', devicePath: 'sim:modem2', workloadId: 'app2', agentAddress: address }),
      ],
      log,
    );
  });

  afterEach(() => {
    for (const c of open.splice(0)) c.destroy();
  });

  after(async () => {
    await server?.close();
    await devices?.close({ code: 'UNAVAILABLE', message: 'test over' });
  });

  /** A socket-plane client over TLS with `material` (trusting our CA for the agent), or plaintext without. */
  async function dial(material: TlsMaterial | undefined): Promise<FramedConnection> {
    let socket: net.Socket;
    if (material) {
      const s = tls.connect({ host: '127.0.0.1', port, key: material.key, cert: material.cert, ca: ca.certPem, checkServerIdentity: () => undefined });
      await new Promise<void>((resolve, reject) => {
        s.once('secureConnect', resolve);
        s.once('error', reject);
      });
      socket = s;
    } else {
      socket = net.connect({ host: '127.0.0.1', port });
      await new Promise<void>((resolve) => socket.once('connect', resolve));
    }
    const conn = new FramedConnection(socket, 'client');
    open.push(conn);
    return conn;
  }

  function logged(message: string, reason: string): Record<string, unknown> | undefined {
    return records.find((r) => r.msg === message && r.reason === reason);
  }

  async function refused(
    material: TlsMaterial | undefined,
    request: { mappingId: string; workloadId: string },
    code: string,
    pattern: RegExp,
  ): Promise<void> {
    const opensBefore = modems.opens;
    const conn = await dial(material);
    await assert.rejects(conn.openSession(request), (err: unknown) => {
      assert.ok(err instanceof DeviceMeshError, `a typed error, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.match(err.message, pattern);
      return true;
    });
    assert.equal(modems.opens, opensBefore, 'the device was never opened');
  }

  it('a workload without a binding (unknown mapping): NOT_FOUND, logged with peer, identity and mapping', async () => {
    await refused(app1, { mappingId: 'no-such-binding', workloadId: 'app1' }, 'NOT_FOUND', /unknown mapping no-such-binding/);
    const record = logged('session refused', 'unknown_mapping');
    assert.ok(record, 'the refusal is logged');
    assert.equal(record.identity, 'spiffe://devicemesh.local/workload/app1');
    assert.equal(record.mapping, 'no-such-binding');
    assert.match(String(record.peer), /^127\.0\.0\.1:\d+$/);
    assert.equal(stats.get('sessions_refused', { reason: 'unknown_mapping' }), 1);
  });

  it("a workload presenting another workload's mapping id: PERMISSION_DENIED, whether it names itself or the owner", async () => {
    await refused(app1, { mappingId: 'm-app2', workloadId: 'app1' }, 'PERMISSION_DENIED', /mapping m-app2 does not belong to workload app1/);
    assert.ok(logged('session refused', 'permission_denied'));
    await refused(app1, { mappingId: 'm-app2', workloadId: 'app2' }, 'PERMISSION_DENIED', /certificate names workload app1; the OPEN asks for workload app2/);
    const record = logged('session refused', 'identity_mismatch');
    assert.equal(record?.mapping, 'm-app2');
    assert.equal(stats.get('sessions_refused', { reason: 'identity_mismatch' }), 1);
  });

  it('a certificate that is not a workload (a host) may not open sessions', async () => {
    const host = await ca.issue('gw9', { kind: 'host' });
    await refused(host, { mappingId: 'm-app1', workloadId: 'app1' }, 'PERMISSION_DENIED', /host\/gw9 is not a workload/);
    assert.ok(logged('session refused', 'not_a_workload'));
  });

  it('a certificate from another CA: the connection is closed UNAUTHENTICATED, logged, counted', async () => {
    const foreign = await otherCa.issue('app1');
    await refused(foreign, { mappingId: 'm-app1', workloadId: 'app1' }, 'UNAUTHENTICATED', /client certificate rejected/);
    const record = logged('socket plane: peer not authenticated; connection closed', 'untrusted_certificate');
    assert.ok(record, 'logged with its reason');
    assert.match(String(record.error), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    assert.equal(stats.get('socket_plane_connections_refused', { reason: 'untrusted_certificate' }), 1);
  });

  it('an expired certificate: closed UNAUTHENTICATED with reason expired_certificate', async () => {
    const expired = await ca.issueExpired('app1');
    await refused(expired, { mappingId: 'm-app1', workloadId: 'app1' }, 'UNAUTHENTICATED', /CERT_HAS_EXPIRED/);
    assert.ok(logged('socket plane: peer not authenticated; connection closed', 'expired_certificate'));
    assert.equal(stats.get('socket_plane_connections_refused', { reason: 'expired_certificate' }), 1);
  });

  it('no client certificate at all: closed UNAUTHENTICATED', async () => {
    const opensBefore = modems.opens;
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, checkServerIdentity: () => undefined });
    await new Promise<void>((resolve) => s.once('secureConnect', resolve));
    const conn = new FramedConnection(s, 'client');
    open.push(conn);
    await assert.rejects(conn.openSession({ mappingId: 'm-app1', workloadId: 'app1' }), /UNAUTHENTICATED|no client certificate/);
    assert.ok(logged('socket plane: peer not authenticated; connection closed', 'no_certificate'));
    assert.equal(modems.opens, opensBefore);
  });

  it('a plaintext client: the handshake fails, logged as not_tls; the device is never opened', async () => {
    const opensBefore = modems.opens;
    const conn = await dial(undefined);
    await assert.rejects(conn.openSession({ mappingId: 'm-app1', workloadId: 'app1' }), (err: unknown) => err instanceof DeviceMeshError);
    await waitFor(() => logged('socket plane: TLS handshake failed', 'not_tls') !== undefined, 'the handshake failure to be logged');
    assert.equal(stats.get('socket_plane_connections_refused', { reason: 'not_tls' }), 1);
    assert.equal(modems.opens, opensBefore);
  });

  it("the sidecar refuses an agent whose certificate names another host", async () => {
    const pool = new AgentPool(log, { tls: new RotatingTlsIdentity(app1) });
    try {
      await assert.rejects(pool.connection(address, 'gw2').openSession({ mappingId: 'm-app1', workloadId: 'app1' }), (err: unknown) => {
        assert.ok(err instanceof DeviceMeshError);
        assert.match(err.message, /presented spiffe:\/\/devicemesh\.local\/host\/gw1, expected spiffe:\/\/devicemesh\.local\/host\/gw2/);
        return true;
      });
    } finally {
      pool.close();
    }
  });

  it('rotation of both ends under a live session: it keeps moving bytes; new sessions handshake with the new certificates', async () => {
    const sidecarIdentity = new RotatingTlsIdentity(app1);
    const pool = new AgentPool(log, { tls: sidecarIdentity });
    try {
      const first = pool.connection(address, 'gw1');
      const live = await first.openSession({ mappingId: 'm-app1', workloadId: 'app1' });
      const got = reader(live);
      await modemAnswers(live, got);

      const newAgent = await ca.issue('gw1', { kind: 'host' });
      const newApp1 = await ca.issue('app1');
      assert.notEqual(serialOf(newAgent.cert), serialOf(agentIdentity.current().cert));
      agentIdentity.rotate(newAgent);
      sidecarIdentity.rotate(newApp1);

      await modemAnswers(live, got);
      assert.ok(!first.isClosed, 'the connection of the live session stays up');

      // New sessions go over a new dial: the agent sees the sidecar's new certificate.
      const second = pool.connection(address, 'gw1');
      assert.notEqual(second, first);
      const fresh = await second.openSession({ mappingId: 'm-app1b', workloadId: 'app1' });
      await modemAnswers(fresh, reader(fresh));
      const authenticated = records.filter((r) => r.msg === 'socket plane: peer authenticated').map((r) => String(r.serial).toUpperCase());
      assert.equal(authenticated.at(-1), serialOf(newApp1.cert));
      assert.ok(authenticated.includes(serialOf(app1.cert)), 'the first connection was made with the old certificate');

      // And the agent's handshake presents its new certificate.
      const probe = tls.connect({ host: '127.0.0.1', port, key: newApp1.key, cert: newApp1.cert, ca: ca.certPem, checkServerIdentity: () => undefined });
      open.push(probe);
      await new Promise<void>((resolve) => probe.once('secureConnect', resolve));
      assert.equal(probe.getPeerX509Certificate()?.serialNumber.toUpperCase(), serialOf(newAgent.cert));
      assert.equal(probe.getProtocol(), 'TLSv1.3');

      await modemAnswers(live, got);
      // The retired connection closes once its last session ends.
      live.end();
      await waitFor(() => first.isClosed, 'the retired connection to close after its session');
      assert.ok(!second.isClosed);
    } finally {
      pool.close();
    }
  });

  it('every closed connection, refused or not, leaves the connection count', async () => {
    await waitFor(() => server.connectionCount === 0, `no connection counted (still ${server.connectionCount})`);
  });
});
