import * as assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
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
import { DEFAULT_POLICY } from '../../../src/model/policy-defaults';
import type { Policy } from '../../../src/proto/types';
import { FramedConnection } from '../../../src/socket-plane/connection';
import type { Session } from '../../../src/socket-plane/session';
import { parseHostPort } from '../../../src/util/address';
import { testLogger, waitFor } from '../../unit/agent/helpers';
import { FakeControlPlane, mapping } from './fake-control-plane';
import { startSocat, stopSocat } from './pty';

function adminStats(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`http://${address}/stats`, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function stat(body: string, name: string, labels: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{${labels}}: `));
  return Number(line?.split(': ').pop() ?? '0');
}

/** Everything a session receives, crediting it at once. */
function collect(session: Session): Buffer[] {
  const chunks: Buffer[] = [];
  session.on('data', (chunk: Buffer) => {
    chunks.push(Buffer.from(chunk));
    session.consumed(chunk.length);
  });
  return chunks;
}

const length = (chunks: readonly Buffer[]): number => chunks.reduce((n, c) => n + c.length, 0);

/**
 * Rate limits through a real agent over socat ptys. The figures asserted are lower bounds a token
 * bucket guarantees (N bytes at R B/s with a burst of B take at least (N − B) / R): a loaded
 * machine only makes them later, never earlier.
 */
describe('agent over socat ptys: rate limits both ways and the device capacity', function () {
  this.timeout(60_000);
  const RATE = 2000;
  let dir: string;
  const socats: ChildProcess[] = [];
  const peers: DeviceHandle[] = [];
  let cp: FakeControlPlane;
  let agent: RunningAgent;
  let client: FramedConnection;
  let paths: { slow: string; shared: string };

  const policy = (fields: Partial<Policy>): Policy => ({ ...DEFAULT_POLICY, ...fields });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-limits-'));
    paths = { slow: path.join(dir, 'ttySlow'), shared: path.join(dir, 'ttyShared') };
    for (const device of Object.values(paths)) {
      socats.push(await startSocat(device, `${device}.peer`));
      peers.push(await new SerialDriver(autoDetect()).open(`${device}.peer`, { serial: null, settings: {} }));
    }
    cp = await FakeControlPlane.start(0, [
      mapping({ id: 'slow', devicePath: paths.slow, policy: policy({ bytesPerSecond: String(RATE) }) }),
      mapping({ id: 'shared', devicePath: paths.shared, policy: policy({ sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: String(RATE) }) }),
    ]);
    agent = await startAgent({
      hostId: 'gw1',
      controlPlane: cp.address,
      listen: '127.0.0.1:0',
      watch: [path.join(dir, 'tty*')],
      simulate: [],
      admin: '127.0.0.1:0',
      loadIntervalMs: 100,
      security: { insecure: true },
      log: testLogger(),
    });
    await waitFor(() => cp.acked('1'), 'the agent to apply the mappings');
    await waitFor(() => Object.values(paths).every((p) => cp.registered.some((e) => e.path === p)), 'both ptys registered');
    const { host, port } = parseHostPort(agent.socketPlaneAddress);
    client = await new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => resolve(new FramedConnection(socket, 'client')));
      socket.once('error', reject);
    });
  });

  after(async () => {
    client?.destroy();
    await agent?.close();
    await cp?.close();
    for (const peer of peers) await peer.close();
    for (const socat of socats) await stopSocat(socat);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('slow mode paces what the device sends to the app at the binding rate, losing nothing', async () => {
    const session = await client.openSession({ mappingId: 'slow', workloadId: 'app1' });
    const chunks = collect(session);
    const data = crypto.randomBytes(4 * RATE);
    const started = performance.now();
    (peers[0] as DeviceHandle).stream.write(data);
    await waitFor(() => length(chunks) >= data.length, 'all of the device output at the app', 30_000);
    const seconds = (performance.now() - started) / 1000;
    console.log(`      ${data.length} bytes of device output reached the app in ${seconds.toFixed(2)} s (limit ${RATE} B/s, burst ${RATE})`);
    assert.ok(Buffer.concat(chunks).equals(data), 'what the app got is what the device sent');
    assert.ok(seconds >= ((data.length - RATE) / RATE) * 0.95, `took ${seconds.toFixed(2)} s, at least 3 s expected`);
    const body = await adminStats(agent.adminAddress);
    assert.ok(stat(body, 'rate_limit_throttled', `mapping=slow,binding=slow,device=gw1/${paths.slow}`) > 0, 'the binding shows as throttled');
    session.end();
  });

  it('shared mode charges every command to the device capacity, and the device meter counts what was written', async () => {
    const peer = peers[1] as DeviceHandle;
    let requests = 0;
    let line = '';
    peer.stream.on('data', (chunk: Buffer) => {
      line += chunk.toString('latin1');
      for (let at = line.indexOf('\n'); at >= 0; at = line.indexOf('\n')) {
        line = line.slice(at + 1);
        requests++;
        peer.stream.write('ok\n');
      }
    });
    const session = await client.openSession({ mappingId: 'shared', workloadId: 'app1' });
    const chunks = collect(session);
    const commands = 20;
    const command = `${'c'.repeat(299)}\n`;
    let peak = 0;
    const watching = setInterval(() => {
      void adminStats(agent.adminAddress).then((body) => (peak = Math.max(peak, stat(body, 'device_bytes_per_second', `device=${paths.shared}`))));
    }, 100);
    const started = performance.now();
    try {
      session.write(Buffer.from(command.repeat(commands)));
      await waitFor(() => length(chunks) >= 3 * commands, 'every answer', 30_000);
    } finally {
      clearInterval(watching);
    }
    const seconds = (performance.now() - started) / 1000;
    const written = commands * command.length;
    console.log(`      ${commands} commands (${written} bytes) against a device capacity of ${RATE} B/s took ${seconds.toFixed(2)} s; device meter peaked at ${peak} B/s`);
    assert.equal(requests, commands);
    assert.ok(seconds >= ((written - RATE) / RATE) * 0.95, `took ${seconds.toFixed(2)} s, at least 2 s expected`);
    // The answers alone are 3 bytes a command: a device meter that counted only reads would stay near 30 B/s.
    assert.ok(peak > RATE / 4, `device meter peaked at ${peak} B/s`);
    session.end();
  });
});
