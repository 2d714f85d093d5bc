import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ComPort, SERVER_OFFSET } from '../../src/rfc2217/com-port-option';
import { IAC, OPT_COM_PORT, SB, SE } from '../../src/rfc2217/telnet-codes';
import { type TelnetItem, TelnetParser } from '../../src/rfc2217/telnet-parser';
import type { ListEndpointsResponse, ListMappingsResponse } from '../../src/proto/types';
import { AppClient } from '../helpers/app-client';
import { EchoResponder } from '../helpers/echo-responder';
import { type OneGatewayMesh, startOneGatewayMesh } from '../helpers/one-gateway-mesh';
import { cli, freePort, httpGet, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

/** The workload's uid on the gateway, and a neighbour's. Neither needs an account: the kernel checks ids. */
const OWNER_UID = 65534;
const STRANGER_UID = 65533;

/**
 * One connection to a Unix socket as another uid, in its own process: what it sent back, or the
 * connect error's code. Asynchronous: the echo on the pty's far side runs in this process.
 */
function roundTripAs(uid: number, socketPath: string, text: string): Promise<{ echoed?: string; error?: string }> {
  const script = `
const s = require('node:net').connect({ path: process.argv[1] });
let got = '';
s.on('connect', () => s.write(process.argv[2]));
s.on('data', (c) => { got += c; if (got.length >= process.argv[2].length) { console.log(JSON.stringify({ echoed: got })); s.destroy(); } });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); });
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); }, 8000).unref();`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script, socketPath, text], { uid, gid: uid, encoding: 'utf8', timeout: 15_000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout.trim().split('\n')[0] ?? '{}') as { echoed?: string; error?: string });
    });
  });
}

/**
 * Issue 17's one-hop mode on real processes: a control plane and an agent, no sidecar at all. The
 * agent serves each one-hop binding on a Unix socket in its owner's directory, and the app's
 * connection reaches the socat pty device through the agent's own device side: the same
 * admission, sharing, read-only and unplug behaviour a socket-plane session gets.
 */
describe('e2e: one hop, the agent serves the workload on its gateway itself', function () {
  this.timeout(120_000);

  let tmp: string;
  let cp: string;
  let agentAdmin: number;
  let mesh: OneGatewayMesh | undefined;
  const ptys = new Map<string, PtyPair>();
  const echoes = new Map<string, EchoResponder>();
  const socket = (name: string): string => path.join(tmp, 'run', 'app1', `${name}.sock`);

  async function plug(name: string): Promise<void> {
    const pair = await PtyPair.create(path.join(tmp, name), path.join(tmp, `peer-${name}`));
    ptys.set(name, pair);
    echoes.set(name, await EchoResponder.open(pair.peer));
  }

  async function unplug(name: string): Promise<void> {
    await echoes.get(name)?.close();
    await ptys.get(name)?.remove();
  }

  const get = <T>(what: string): T => {
    const r = cli(['get', what, '-o', 'json', '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const present = (name: string): boolean => get<ListEndpointsResponse>('endpoints').endpoints.some((e) => e.path === path.join(tmp, name) && e.state === 'ENDPOINT_STATE_PRESENT');
  const mappingId = (binding: string): string => get<ListMappingsResponse>('mappings').mappings.find((m) => m.binding === binding)?.id ?? '';
  const agentMetric = async (name: string, label: string): Promise<number> => {
    const body = (await httpGet(`http://127.0.0.1:${agentAdmin}/stats/prometheus`)).body;
    const line = body.split('\n').find((l) => l.startsWith(`devicemesh_${name}{`) && l.includes(label));
    return Number(line?.split(' ').pop() ?? '0');
  };

  const binding = (name: string, device: string, extra: string, protocol = 'raw'): string => `
kind: Binding
name: ${name}
workload: app1
device: { host: gw1, path: ${path.join(tmp, device)} }
virtual: { name: ${name}, protocol: ${protocol}, oneHop: true, path: ${socket(name)}, owner: "${OWNER_UID}" }
${extra}
---`;

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (the README test command installs it)');
      this.skip();
    }
    if (process.getuid?.() !== 0) {
      console.log('    skipped: the agent must give the socket directory to another uid, which needs root');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-onehop-'));
    // Other uids pass through the test directory to reach the workload's (mkdtemp makes it 0700).
    fs.chmodSync(tmp, 0o755);
    for (const name of ['ttyOH0', 'ttyOH1', 'ttyOH2']) await plug(name);
    cp = `127.0.0.1:${await freePort()}`;
    agentAdmin = await freePort();
    mesh = await startOneGatewayMesh('e2e-onehop', tmp, cp, agentAdmin, []);
    await waitFor('the ptys in the register', () => ['ttyOH0', 'ttyOH1', 'ttyOH2'].every(present), 30_000);
    const file = path.join(tmp, 'bindings.yaml');
    fs.writeFileSync(
      file,
      [
        binding('raw', 'ttyOH0', 'policy: { sharing: exclusive }'),
        binding('ro', 'ttyOH1', 'policy: { access: read-only }'),
        binding('com', 'ttyOH2', 'serial: { baudRate: 115200 }', 'rfc2217'),
      ].join('\n'),
    );
    const r = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the agent to serve the three sockets', () => ['raw', 'ro', 'com'].every((n) => fs.existsSync(socket(n))), 20_000);
  });

  after(async () => {
    await Promise.all([mesh?.agent.stop(), mesh?.controlPlane.stop()]);
    for (const name of ptys.keys()) await unplug(name);
  });

  it('gives the socket to its owner: directory 0700 and socket 0600, both the owner uid', () => {
    const dir = fs.statSync(path.dirname(socket('raw')));
    assert.equal(dir.uid, OWNER_UID);
    assert.equal(dir.mode & 0o777, 0o700);
    const s = fs.statSync(socket('raw'));
    assert.ok(s.isSocket());
    assert.equal(s.uid, OWNER_UID);
    assert.equal(s.mode & 0o777, 0o600);
  });

  it('round-trips the owner’s bytes through the real pty device, with no sidecar anywhere', async () => {
    const app = await AppClient.connectPath(socket('raw'));
    const payload = Buffer.alloc(64 * 1024, 0).map((_, i) => i % 251);
    app.socket.write(payload);
    assert.ok((await app.take(payload.length)).equals(payload), 'the 64 KiB came back byte for byte');
    app.socket.destroy();
    assert.deepEqual(await roundTripAs(OWNER_UID, socket('raw'), 'hello over one hop'), { echoed: 'hello over one hop' });
  });

  it('gives a workload that is not bound nothing: another uid cannot connect, an unbound name has no socket', async () => {
    assert.deepEqual(await roundTripAs(STRANGER_UID, socket('raw'), 'let me in'), { error: 'EACCES' });
    assert.deepEqual(await roundTripAs(STRANGER_UID, socket('nothing'), 'x'), { error: 'EACCES' });
    assert.equal(fs.existsSync(socket('nothing')), false);
  });

  it('refuses a second app while the first holds the exclusive device, and counts it', async () => {
    const refusedBefore = await agentMetric('sessions_refused_total', 'reason="in_use"');
    const holder = await AppClient.connectPath(socket('raw'));
    holder.socket.write('first');
    await holder.take(5);
    const second = await AppClient.connectPath(socket('raw'));
    await waitFor('the second app to be closed', () => second.closed, 10_000);
    assert.equal(second.received, 0);
    await waitFor('the refusal to be counted', async () => (await agentMetric('sessions_refused_total', 'reason="in_use"')) > refusedBefore, 5000);
    holder.socket.write('still mine');
    assert.equal((await holder.take(10)).toString(), 'still mine');
    holder.socket.destroy();
  });

  it('keeps a read-only binding’s bytes from the device: the session ends and the write is counted', async () => {
    const echo = echoes.get('ttyOH1') as EchoResponder;
    const app = await AppClient.connectPath(socket('ro'));
    app.socket.write('must not reach the device');
    await waitFor('the read-only app to be closed', () => app.closed, 10_000);
    assert.equal(echo.received, 0);
    assert.ok((await agentMetric('writes_refused_total', `mapping="${mappingId('ro')}"`)) >= 1);
  });

  it('speaks RFC 2217 through the sidecar’s own bridge: SET-BAUDRATE answered with the value in use, data both ways', async () => {
    const app = await AppClient.connectPath(socket('com'));
    const parser = new TelnetParser();
    const items: TelnetItem[] = [];
    app.socket.on('data', (chunk: Buffer) => items.push(...parser.push(Buffer.from(chunk))));
    const baud = Buffer.alloc(4);
    baud.writeUInt32BE(9600);
    app.socket.write(Buffer.concat([Buffer.from([IAC, SB, OPT_COM_PORT, ComPort.SetBaudRate]), baud, Buffer.from([IAC, SE])]));
    const answer = await waitFor(
      'the SET-BAUDRATE answer',
      () => items.find((i) => i.kind === 'subnegotiation' && i.option === OPT_COM_PORT && i.payload[0] === ComPort.SetBaudRate + SERVER_OFFSET),
      10_000,
    );
    assert.equal(answer.kind === 'subnegotiation' && answer.payload.readUInt32BE(1), 9600);
    app.socket.write(Buffer.from('AT\r\n'));
    await waitFor('the echo as Telnet data', () => Buffer.concat(items.flatMap((i) => (i.kind === 'data' ? [i.data] : []))).includes('AT\r\n'), 10_000);
    app.socket.destroy();
  });

  it('ends the app’s connection when the device is pulled, refuses while it is absent, and serves it again on re-plug', async () => {
    const app = await AppClient.connectPath(socket('raw'));
    app.socket.write('before');
    await app.take(6);
    await unplug('ttyOH0');
    await waitFor('the app connection to end with the device', () => app.closed, 10_000);
    await waitFor('the device to be absent', () => !present('ttyOH0'), 10_000);
    const absent = await AppClient.connectPath(socket('raw')).catch(() => undefined);
    if (absent) await waitFor('a connection while the device is absent to be closed', () => absent.closed, 10_000);
    await plug('ttyOH0');
    await waitFor('the device to be back', () => present('ttyOH0'), 20_000);
    const again = await waitFor('the socket to serve again', async () => {
      const c = await AppClient.connectPath(socket('raw')).catch(() => undefined);
      if (!c) return undefined;
      c.socket.write('after');
      return c.take(5, 3000).then(
        (b) => b.toString(),
        () => (c.socket.destroy(), undefined),
      );
    }, 20_000);
    assert.equal(again, 'after');
  });
});
