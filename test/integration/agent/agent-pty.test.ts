import * as assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { autoDetect } from '@serialport/bindings-cpp';
import type { DeviceHandle } from '../../../agent/drivers/device-driver';
import { SerialDriver } from '../../../agent/drivers/serial-driver';
import { type RunningAgent, startAgent } from '../../../agent/main';
import type { DeviceMeshError } from '../../../src/errors';
import { FramedConnection } from '../../../src/socket-plane/connection';
import { FrameType, HEADER_SIZE, PREFACE } from '../../../src/socket-plane/frame';
import type { Session } from '../../../src/socket-plane/session';
import { parseHostPort } from '../../../src/util/address';
import { testLogger, waitFor } from '../../unit/agent/helpers';
import { FakeControlPlane, mapping } from './fake-control-plane';
import { echo, startSocat, stopSocat } from './pty';

function connect(address: string): Promise<FramedConnection> {
  const { host, port } = parseHostPort(address);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => resolve(new FramedConnection(socket, 'client')));
    socket.once('error', reject);
  });
}

/** Collects what a session receives, granting credit as it goes. */
class Reader {
  private chunks: Buffer[] = [];
  length = 0;
  /** > 0: a slow app, granting the agent credit only this many ms after the bytes came. */
  creditDelayMs = 0;

  constructor(private readonly session: Session) {
    session.on('data', (chunk: Buffer) => {
      this.chunks.push(Buffer.from(chunk));
      this.length += chunk.length;
      if (this.creditDelayMs > 0) setTimeout(() => session.consumed(chunk.length), this.creditDelayMs);
      else session.consumed(chunk.length);
    });
  }

  async take(n: number, timeoutMs = 20_000): Promise<Buffer> {
    await waitFor(() => this.length >= n || this.session.closed, `${n} bytes from the session`, timeoutMs);
    const all = Buffer.concat(this.chunks);
    assert.ok(all.length >= n, `session closed after ${all.length} of ${n} bytes`);
    this.chunks = [all.subarray(n)];
    this.length = all.length - n;
    return all.subarray(0, n);
  }
}

/** Writes everything, respecting the session's send credit. */
async function writeAll(session: Session, data: Buffer, chunkSize = 16 * 1024): Promise<void> {
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    if (!session.write(data.subarray(offset, offset + chunkSize))) {
      await new Promise<void>((resolve) => session.once('drain', resolve));
    }
  }
}

function getJson(address: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}${urlPath}`, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

interface DumpedDevice {
  path: string;
  open: boolean;
  sessions: unknown[];
}

async function deviceDump(admin: string, devicePath: string): Promise<DumpedDevice | undefined> {
  const dump = JSON.parse((await getJson(admin, '/config_dump')).body) as { devices: DumpedDevice[] };
  return dump.devices.find((d) => d.path === devicePath);
}

function stty(devicePath: string): string {
  return execFileSync('stty', ['-F', devicePath], { encoding: 'utf8' });
}

describe('agent over a socat pty pair', function () {
  this.timeout(60_000);
  let dir: string;
  let devicePath: string;
  let peerPath: string;
  let socat: ChildProcess | undefined;
  let peer: DeviceHandle | undefined;
  let received: Buffer[] = [];
  let cp: FakeControlPlane;
  let agent: RunningAgent;
  let client: FramedConnection;
  let m1: ReturnType<typeof mapping>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-agent-'));
    devicePath = path.join(dir, 'ttyDev0');
    peerPath = path.join(dir, 'peer0');
    socat = await startSocat(devicePath, peerPath);
    peer = await new SerialDriver(autoDetect()).open(peerPath, { serial: null, settings: {} });
    received = echo(peer);
    m1 = mapping({ id: 'm1', workloadId: 'app1', devicePath });
    cp = await FakeControlPlane.start(0, [m1]);
    agent = await startAgent({
      hostId: 'gw1',
      controlPlane: cp.address,
      listen: '127.0.0.1:0',
      watch: [path.join(dir, 'tty*')],
      simulate: [],
      admin: '127.0.0.1:0',
      // The fake control plane serves plaintext and has no Identity service.
      security: { insecure: true },
      log: testLogger(),
    });
    client = await connect(agent.socketPlaneAddress);
  });

  after(async () => {
    client?.destroy();
    await agent?.close();
    await cp?.close();
    await peer?.close();
    await stopSocat(socat);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('registers the pty that appeared with the control plane', async () => {
    await waitFor(() => cp.registered.some((e) => e.path === devicePath), 'RegisterEndpoint for the pty');
    const e = cp.registered.find((r) => r.path === devicePath);
    assert.equal(e?.id, `gw1/${devicePath}`);
    assert.equal(e?.hostId, 'gw1');
    assert.equal(e?.deviceId, devicePath);
    assert.equal(e?.kind, 'DEVICE_KIND_SERIAL');
    assert.equal(e?.state, 'ENDPOINT_STATE_PRESENT');
    assert.deepEqual(e?.capabilities, ['serial']);
  });

  it('is ready once the first mapping set is applied, and ACKs it', async () => {
    await waitFor(async () => (await getJson(agent.adminAddress, '/ready')).status === 200, 'the agent to be ready');
    await waitFor(() => cp.acked('1'), 'the ACK of version 1');
    const node = cp.requests.find((r) => r.node)?.node;
    assert.equal(node?.id, 'gw1');
    assert.equal(node?.metadata?.fields.socketPlane?.stringValue, agent.socketPlaneAddress);
  });

  it('refuses an unknown mapping and a foreign workload with a clear reason, without opening the device', async () => {
    await assert.rejects(client.openSession({ mappingId: 'nope', workloadId: 'app1' }), (err: DeviceMeshError) => {
      assert.equal(err.code, 'NOT_FOUND');
      assert.equal(err.message, 'unknown mapping nope');
      return true;
    });
    await assert.rejects(client.openSession({ mappingId: 'm1', workloadId: 'intruder' }), (err: DeviceMeshError) => {
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.equal(err.message, 'mapping m1 does not belong to workload intruder');
      return true;
    });
    assert.equal((await deviceDump(agent.adminAddress, devicePath))?.open, false);
    const stats = (await getJson(agent.adminAddress, '/stats')).body;
    assert.match(stats, /sessions_refused\{reason=unknown_mapping\}: 1/);
    assert.match(stats, /sessions_refused\{reason=permission_denied\}: 1/);
  });

  describe('an open session', () => {
    let session: Session;
    let reader: Reader;

    before(async () => {
      session = await client.openSession({ mappingId: 'm1', workloadId: 'app1' });
      reader = new Reader(session);
    });

    it('opened the device with the mapping serial configuration, and locked it', async () => {
      assert.match(stty(devicePath), /speed 9600 baud/);
      await assert.rejects(new SerialDriver(autoDetect()).open(devicePath, { serial: null, settings: {} }), /Cannot lock port/);
    });

    it('carries all 256 byte values to the device and back', async () => {
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      assert.ok(session.write(all));
      assert.deepEqual(await reader.take(256), all);
      assert.deepEqual(Buffer.concat(received), all);
    });

    it('carries 1 MiB each way unchanged', async () => {
      received.length = 0;
      const data = crypto.randomBytes(1 << 20);
      const back = reader.take(data.length, 40_000);
      await writeAll(session, data);
      const echoed = await back;
      assert.ok(echoed.equals(data), 'what came back equals what was sent');
      assert.ok(Buffer.concat(received).equals(data), 'what the device end got equals what was sent');
    });

    it('carries 1 MiB each way unchanged to an app that reads slowly', async () => {
      received.length = 0;
      reader.creditDelayMs = 50;
      const data = crypto.randomBytes(1 << 20);
      const back = reader.take(data.length, 40_000);
      await writeAll(session, data);
      const echoed = await back;
      reader.creditDelayMs = 0;
      assert.ok(echoed.equals(data), 'what came back equals what was sent');
      assert.ok(Buffer.concat(received).equals(data), 'what the device end got equals what was sent');
    });

    it('refuses a second session on the exclusive device', async () => {
      await assert.rejects(client.openSession({ mappingId: 'm1', workloadId: 'app1' }), (err: DeviceMeshError) => {
        assert.equal(err.code, 'RESOURCE_EXHAUSTED');
        assert.equal(err.message, `device ${devicePath} is in use by app1`);
        return true;
      });
    });

    it('answers garbage on another connection with GOAWAY and keeps this session working', async () => {
      const { host, port } = parseHostPort(agent.socketPlaneAddress);
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = net.connect({ host, port }, () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('error', reject);
      });
      assert.equal(reply.readUInt8(4), FrameType.GoAway);
      assert.equal(reply.readUInt32BE(5), 0);
      const payload = JSON.parse(reply.subarray(HEADER_SIZE, HEADER_SIZE + reply.readUInt32BE(0)).toString()) as { code: string; message: string };
      assert.equal(payload.code, 'PROTOCOL_ERROR');
      assert.match(payload.message, /bad preface/);
      assert.match((await getJson(agent.adminAddress, '/stats')).body, /socket_plane_protocol_errors: 1/);

      // A good preface, then a frame of an unknown type.
      const bad = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const socket = net.connect({ host, port }, () => socket.write(Buffer.concat([PREFACE, Buffer.from([0, 0, 0, 0, 0x99, 0, 0, 0, 1])])));
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('error', reject);
      });
      assert.equal(bad.readUInt8(4), FrameType.GoAway);
      assert.match(bad.subarray(HEADER_SIZE).toString(), /unknown frame type 0x99/);
      assert.match((await getJson(agent.adminAddress, '/stats')).body, /socket_plane_protocol_errors: 2/);

      assert.ok(session.write(Buffer.from('still here')));
      assert.equal((await reader.take(10)).toString(), 'still here');
    });

    it('applies a changed baud rate to the open device', async () => {
      cp.setMappings([{ ...m1, serial: { ...m1.serial, baudRate: 19200 }, version: '2' }]);
      await waitFor(() => /speed 19200 baud/.test(stty(devicePath)), 'stty to show 19200');
    });

    it('closes the device after the session ends', async () => {
      session.end();
      await waitFor(() => session.closed, 'the session to finish');
      await waitFor(async () => (await deviceDump(agent.adminAddress, devicePath))?.open === false, 'the device to close');
    });
  });

  // Mocha runs a suite's own tests before its nested suites: these need the session above closed.
  describe('after the session', () => {
    it('NACKs a mapping for another host and keeps serving the good one', async () => {
      const version = cp.setMappings([{ ...m1, version: '3' }, mapping({ id: 'bad', devicePath: '/dev/x', hostId: 'gw2' })]);
      await waitFor(() => cp.nacks().some((m) => /mapping bad: is for host "gw2"/.test(m)), 'the NACK');
      assert.ok(!cp.acked(version));
      const session = await client.openSession({ mappingId: 'm1', workloadId: 'app1' });
      session.reset({ code: 'UNAVAILABLE', message: 'test done' });
      await waitFor(async () => (await deviceDump(agent.adminAddress, devicePath))?.open === false, 'the device to close');
    });

    it('resets the session of a withdrawn binding', async () => {
      cp.setMappings([m1]);
      const session = await client.openSession({ mappingId: 'm1', workloadId: 'app1' });
      const closed = new Promise<DeviceMeshError | undefined>((resolve) => session.once('close', resolve));
      cp.setMappings([]);
      const err = await closed;
      assert.equal(err?.code, 'NOT_FOUND');
      assert.match(err?.message ?? '', /binding withdrawn/);
      await assert.rejects(client.openSession({ mappingId: 'm1', workloadId: 'app1' }), /unknown mapping m1/);
    });

    it('resets the session with DEVICE_ERROR and marks the endpoint absent when the pty goes away', async () => {
      const version = cp.setMappings([m1]);
      await waitFor(() => cp.acked(version), 'the mapping back');
      const session = await client.openSession({ mappingId: 'm1', workloadId: 'app1' });
      const closed = new Promise<DeviceMeshError | undefined>((resolve) => session.once('close', resolve));
      await peer?.close();
      peer = undefined;
      await stopSocat(socat);
      const err = await closed;
      assert.equal(err?.code, 'DEVICE_ERROR');
      assert.equal(err?.message, `device ${devicePath} removed`);
      await waitFor(() => cp.deregistered.some((d) => d.id === `gw1/${devicePath}` && d.markAbsent), 'DeregisterEndpoint(markAbsent)');
      await assert.rejects(client.openSession({ mappingId: 'm1', workloadId: 'app1' }), (e: DeviceMeshError) => {
        assert.equal(e.code, 'UNAVAILABLE');
        assert.equal(e.message, `device ${devicePath} is not present on host gw1`);
        return true;
      });
    });
  });
});
