import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ListEndpointsResponse, ListMappingsResponse } from '../../src/proto/types';
import { AppClient } from '../helpers/app-client';
import { AT_POLICY, AtApp } from '../helpers/at-app';
import { AtResponder } from '../helpers/at-responder';
import { EchoResponder } from '../helpers/echo-responder';
import { type OneGatewayMesh, startOneGatewayMesh } from '../helpers/one-gateway-mesh';
import { cli, freePort, httpGet, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';
import { closesFramingBreakers, modemAnswersSettingsAndQueries, modemStateReachesPySerial, modemWorksAt7E1, movesEveryByteValue, sttyShows9600TwoStopBitsRtsCts, TWO_PROTOCOL_ERRORS } from '../helpers/rfc2217-cases';
import { havePySerial, PySerialClient, TelnetClient } from '../helpers/rfc2217-clients';
import { dropsAndCountsEveryByte, holdsTenKilobytesPerSecond } from '../helpers/rate-limit-cases';
import { SlowReader } from '../helpers/slow-reader';

/** The workload's uid on the gateway, a bound neighbour's, and a stranger's. None needs an account: the kernel checks ids. */
const OWNER_UID = 65534;
const NEIGHBOUR_UID = 65532;
const STRANGER_UID = 65533;

/** What the far side of a pty does: echo, answer AT commands, or read and count. */
type Responder = EchoResponder | AtResponder | SlowReader;
type ResponderKind = 'echo' | 'at' | 'reader';

/** The RFC 2217 bindings' line settings, as the sidecar path's RFC 2217 test binds them. */
const SERIAL = 'serial: { baudRate: 115200, dataBits: 8, parity: none, stopBits: 1, flowControl: none }';

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
 * connection reaches the socat pty device through the agent's own device side. Each case asserts
 * what the sidecar path's test of the same thing asserts (the table in docs/one-hop.md names both):
 * policies, read-only, sharing, hotplug, unplug errors and an unbound workload, for raw and RFC 2217.
 */
describe('e2e: one hop, the agent serves the workload on its gateway itself', function () {
  this.timeout(180_000);

  let tmp: string;
  let cp: string;
  let agentAdmin: number;
  let mesh: OneGatewayMesh | undefined;
  const ptys = new Map<string, PtyPair>();
  const responders = new Map<string, Responder>();
  const clients: Array<PySerialClient | TelnetClient | AppClient> = [];
  /** Mapping id per binding name, read once the bindings are applied. */
  const mappingIds = new Map<string, string>();
  const socket = (name: string, workload = 'app1'): string => path.join(tmp, 'run', workload, `${name}.sock`);

  async function plug(name: string, kind: ResponderKind = 'echo'): Promise<void> {
    const pair = await PtyPair.create(path.join(tmp, name), path.join(tmp, `peer-${name}`));
    ptys.set(name, pair);
    responders.set(name, kind === 'echo' ? await EchoResponder.open(pair.peer) : kind === 'at' ? await AtResponder.open(pair.peer, 1) : await SlowReader.open(pair.peer, Number.MAX_SAFE_INTEGER, 0));
  }

  async function unplug(name: string): Promise<void> {
    await responders.get(name)?.close();
    await ptys.get(name)?.remove();
  }

  const responder = <T extends Responder>(name: string): T => responders.get(name) as T;
  const pyserial = async (name: string, settings: Record<string, unknown> = {}): Promise<PySerialClient> => {
    const c = await PySerialClient.openPath(socket(name), settings);
    clients.push(c);
    return c;
  };
  const telnet = async (name: string): Promise<TelnetClient> => {
    const c = await TelnetClient.connectPath(socket(name));
    clients.push(c);
    return c;
  };
  const app = async (name: string, workload = 'app1'): Promise<AppClient> => {
    const c = await AppClient.connectPath(socket(name, workload));
    clients.push(c);
    return c;
  };

  const get = <T>(what: string): T => {
    const r = cli(['get', what, '-o', 'json', '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const mappingOf = (binding: string): string | undefined => get<ListMappingsResponse>('mappings').mappings.find((m) => m.binding === binding)?.id;
  const mappingId = (binding: string): string => mappingIds.get(binding) ?? assert.fail(`no mapping for ${binding}`);
  const agentStats = async (): Promise<string> => (await httpGet(`http://127.0.0.1:${agentAdmin}/stats`)).body;
  const agentMetric = async (name: string, label: string): Promise<number> => {
    const body = (await httpGet(`http://127.0.0.1:${agentAdmin}/stats/prometheus`)).body;
    const line = body.split('\n').find((l) => l.startsWith(`devicemesh_${name}{`) && l.includes(label));
    return Number(line?.split(' ').pop() ?? '0');
  };
  /** The pty's line settings as the kernel has them. */
  const stty = (name: string): string => execFileSync('stty', ['-F', path.join(tmp, name), '-a'], { encoding: 'utf8' });

  const binding = (name: string, device: string, extra: string, protocol = 'raw', workload = 'app1', owner = OWNER_UID): string => `
kind: Binding
name: ${name}
workload: ${workload}
device: { host: gw1, path: ${device.startsWith('sim:') ? device : path.join(tmp, device)} }
virtual: { name: ${name}, protocol: ${protocol}, oneHop: true, path: ${socket(name, workload)}, owner: "${owner}" }
${extra}
---`;

  const served = ['raw', 'ro', 'com', 'modem', 'shared-a', 'drop', 'rate'];

  before(async function () {
    if (!haveSocat() || !havePySerial()) {
      console.log('    skipped: socat or python3-serial is not installed (scripts/install-test-deps.sh installs them)');
      this.skip();
    }
    if (process.getuid?.() !== 0) {
      console.log('    skipped: the agent must give the socket directory to another uid, which needs root');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-onehop-'));
    // Other uids pass through the test directory to reach the workload's (mkdtemp makes it 0700).
    fs.chmodSync(tmp, 0o755);
    const devices: Array<[string, ResponderKind]> = [['ttyOH0', 'echo'], ['ttyOH1', 'echo'], ['ttyOH2', 'echo'], ['ttyOH3', 'at'], ['ttyOH4', 'reader'], ['ttyOH5', 'reader']];
    for (const [name, kind] of devices) await plug(name, kind);
    cp = `127.0.0.1:${await freePort()}`;
    agentAdmin = await freePort();
    mesh = await startOneGatewayMesh('e2e-onehop', tmp, cp, agentAdmin, [], ['--simulate', 'modem']);
    await waitFor('the ptys and the simulated modem in the register', () => {
      const endpoints = get<ListEndpointsResponse>('endpoints').endpoints.filter((e) => e.state === 'ENDPOINT_STATE_PRESENT').map((e) => e.path);
      return devices.every(([name]) => endpoints.includes(path.join(tmp, name))) && endpoints.includes('sim:modem0');
    }, 60_000);
    const file = path.join(tmp, 'bindings.yaml');
    fs.writeFileSync(
      file,
      [
        binding('raw', 'ttyOH0', 'policy: { sharing: exclusive }'),
        binding('ro', 'ttyOH1', 'policy: { access: read-only }'),
        binding('com', 'ttyOH2', `policy: { sharing: broadcast }\n${SERIAL}`, 'rfc2217'),
        binding('modem', 'sim:modem0', `policy: { sharing: exclusive }\n${SERIAL}`, 'rfc2217'),
        binding('shared-a', 'ttyOH3', `policy: { ${AT_POLICY} }`),
        binding('shared-b', 'ttyOH3', `policy: { ${AT_POLICY} }`, 'raw', 'app2', NEIGHBOUR_UID),
        binding('drop', 'ttyOH4', 'policy: { bytesPerSecond: 10000, overLimit: drop }'),
        binding('rate', 'ttyOH5', 'policy: { bytesPerSecond: 10000 }'),
        // Its device is plugged in by the hotplug case, after the binding exists.
        binding('later', 'ttyOH6', ''),
      ].join('\n'),
    );
    const r = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the agent to serve the sockets', () => served.every((n) => fs.existsSync(socket(n))) && fs.existsSync(socket('shared-b', 'app2')), 30_000);
    for (const m of get<ListMappingsResponse>('mappings').mappings) mappingIds.set(m.binding, m.id);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) {
      if (c instanceof PySerialClient) await c.close();
      else if (c instanceof TelnetClient) c.destroy();
      else c.close();
    }
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

  it('round-trips the owner’s bytes through the real pty device, every byte value, with no sidecar anywhere', async () => {
    const c = await app('raw');
    const payload = Buffer.alloc(64 * 1024, 0).map((_, i) => i % 251);
    c.socket.write(payload);
    assert.ok((await c.take(payload.length)).equals(payload), 'the 64 KiB came back byte for byte');
    c.close();
    assert.deepEqual(await roundTripAs(OWNER_UID, socket('raw'), 'hello over one hop'), { echoed: 'hello over one hop' });
  });

  // The sidecar path's counterpart: serial-path.test.ts, 'refuses an unknown workload…; the device is not opened'.
  it('gives a workload that is not bound nothing: no uid but the owner’s connects, no session opens, the device hears nothing', async () => {
    const opened = (s: string): number => Number(/^sessions_opened: (\d+)$/m.exec(s)?.[1] ?? '0');
    const before = opened(await agentStats());
    const echoBefore = responder<EchoResponder>('ttyOH0').received;
    for (const name of served) assert.deepEqual(await roundTripAs(STRANGER_UID, socket(name), 'let me in'), { error: 'EACCES' }, name);
    // Bound to a binding of its own on the same gateway, the neighbour still cannot reach app1's.
    assert.deepEqual(await roundTripAs(NEIGHBOUR_UID, socket('raw'), 'let me in'), { error: 'EACCES' });
    assert.deepEqual(await roundTripAs(STRANGER_UID, socket('nothing'), 'x'), { error: 'EACCES' });
    assert.equal(fs.existsSync(socket('nothing')), false);
    const after = await agentStats();
    assert.equal(opened(after), before, 'no session was opened for the refused connections');
    assert.equal(responder<EchoResponder>('ttyOH0').received, echoBefore);
  });

  it('refuses a second app while the first holds the exclusive device, and counts it', async () => {
    const refusedBefore = await agentMetric('sessions_refused_total', 'reason="in_use"');
    const holder = await app('raw');
    holder.socket.write('first');
    await holder.take(5);
    const second = await app('raw');
    await waitFor('the second app to be closed', () => second.closed, 10_000);
    assert.equal(second.received, 0);
    await waitFor('the refusal to be counted', async () => (await agentMetric('sessions_refused_total', 'reason="in_use"')) > refusedBefore, 5000);
    holder.socket.write('still mine');
    assert.equal((await holder.take(10)).toString(), 'still mine');
  });

  // sharing.test.ts, 'gives each of eight consumers in shared mode its own responses…'
  it('gives each of eight consumers of two workloads in shared mode its own responses, whole and never interleaved', async () => {
    const at = responder<AtResponder>('ttyOH3');
    const answeredBefore = at.answered;
    const apps: AtApp[] = [];
    for (let i = 0; i < 8; i++) apps.push(new AtApp(await (i % 2 === 0 ? app('shared-a') : app('shared-b', 'app2')), `c${i}`, 2, 40));
    await waitFor('every answer', () => apps.every((a) => a.answered === 40 || a.mismatch !== undefined), 60_000);
    for (const [i, a] of apps.entries()) assert.equal(a.mismatch, undefined, `consumer c${i}: ${a.mismatch}`);
    assert.equal(at.answered - answeredBefore, 320);
  });

  // sharing.test.ts, 'drops what a drop-policy binding sends above its limit and counts every dropped byte'
  it('drops what a drop-policy binding sends above its limit and counts every dropped byte', async () => {
    const reader = responder<SlowReader>('ttyOH4');
    await dropsAndCountsEveryByte(await app('drop'), reader, () => agentMetric('rate_limit_dropped_bytes_total', `mapping="${mappingId('drop')}"`));
  });

  // sharing.test.ts, 'holds a binding limited to 10 kB/s to 10 kB/s ± 10 % over 10 s' (over 5 s here, for the CI budget).
  it('holds a binding limited to 10 kB/s to 10 kB/s ± 10 % over 5 s, slowing the app down through the in-process session', async () => {
    const reader = responder<SlowReader>('ttyOH5');
    await holdsTenKilobytesPerSecond(await app('rate'), reader, 5000);
  });

  it('keeps a read-only binding’s bytes from the device: the session ends and the write is counted', async () => {
    const echo = responder<EchoResponder>('ttyOH1');
    const c = await app('ro');
    c.socket.write('must not reach the device');
    await waitFor('the read-only app to be closed', () => c.closed, 10_000);
    assert.equal(echo.received, 0);
    assert.ok((await agentMetric('writes_refused_total', `mapping="${mappingId('ro')}"`)) >= 1);
  });

  // rfc2217.test.ts, each case on the pty and on the simulated modem, with pyserial on the Unix socket.
  it('RFC 2217: moves data both ways through pyserial, every byte value and 0xFF runs included', async () => {
    await movesEveryByteValue(await pyserial('com'));
  });

  it('RFC 2217: 9600 baud, 2 stop bits and RTS/CTS from pyserial are what the kernel has on the pty', async () => {
    await pyserial('com', { baudrate: 9600, stopbits: 2, rtscts: true });
    sttyShows9600TwoStopBitsRtsCts(stty('ttyOH2'));
  });

  it('RFC 2217: 7 data bits and even parity on the simulated modem: answered as asked, and the modem works at them', async () => {
    await modemWorksAt7E1(await pyserial('modem', { bytesize: 7, parity: 'E' }));
  });

  it('RFC 2217: on the simulated modem, settings answered as asked, queries answer the value in use', async () => {
    await modemAnswersSettingsAndQueries(await telnet('modem'));
  });

  it('RFC 2217: modem-state notifications reach pyserial: carrier detect after dialling, DSR after DTR drops', async () => {
    await modemStateReachesPySerial(await pyserial('modem'));
  });

  it('RFC 2217: closes clients that break the framing, ignores harmless garbage, and leaves the others untouched', async () => {
    await closesFramingBreakers(await pyserial('com'), () => telnet('com'));
    assert.match(await agentStats(), TWO_PROTOCOL_ERRORS);
    assert.equal(mesh?.agent.child.exitCode, null, 'the agent still runs');
  });

  // hotplug.test.ts covers a device plugged after the mesh started; here the binding waits for it.
  it('serves a binding whose device is plugged in after it: no socket before, the owner’s socket and round trips after', async () => {
    assert.equal(fs.existsSync(socket('later')), false, 'no socket for an absent device');
    await plug('ttyOH6');
    await waitFor('the socket of the plugged device', () => fs.existsSync(socket('later')), 20_000);
    assert.equal(fs.statSync(socket('later')).uid, OWNER_UID);
    const c = await app('later');
    assert.deepEqual(await c.roundTrip(Buffer.from('plugged later')), Buffer.from('plugged later'));
  });

  // hotplug.test.ts, 'resets a session on a pulled device with "device removed", and brings its mapping back…'
  it('ends raw and RFC 2217 apps with "device removed" when their devices are pulled, withdraws them, and serves the same mappings again on re-plug', async () => {
    const raw = await app('raw');
    assert.deepEqual(await raw.roundTrip(Buffer.from('before')), Buffer.from('before'));
    const com = await telnet('com');
    assert.deepEqual([...(await com.request(4, [0]))], [1]);
    await Promise.all([unplug('ttyOH0'), unplug('ttyOH2')]);
    await waitFor('the raw app connection to end with the device', () => raw.closed, 10_000);
    await com.closed;
    for (const device of ['ttyOH0', 'ttyOH2']) {
      assert.match(mesh?.agent.output() ?? '', new RegExp(`"code":"DEVICE_ERROR","error":"device [^"]*${device} removed","msg":"session ended with an error"`));
    }
    await waitFor('the sockets removed while the devices are away', () => !fs.existsSync(socket('raw')) && !fs.existsSync(socket('com')), 10_000);
    assert.equal(mappingOf('raw'), undefined, 'the binding is pending while its device is away');

    await plug('ttyOH0');
    await plug('ttyOH2');
    await waitFor('the sockets back', () => fs.existsSync(socket('raw')) && fs.existsSync(socket('com')), 20_000);
    assert.equal(mappingOf('raw'), mappingId('raw'), 'the same mapping, nobody re-applied anything');
    const again = await app('raw');
    assert.deepEqual(await again.roundTrip(Buffer.from('after replug')), Buffer.from('after replug'));
    const comAgain = await telnet('com');
    assert.deepEqual([...(await comAgain.request(4, [0]))], [1]);
  });
});
