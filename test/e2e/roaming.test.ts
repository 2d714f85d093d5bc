import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlPlaneClient } from '../../cli/control-plane-client';
import { parseDocuments } from '../../src/documents/documents';
import { clientCredentialFiles } from '../../src/security/client-credential-files';
import type { BindingStatus, ListBindingsResponse, ListMappingsResponse, Mapping } from '../../src/proto/types';
import { AppClient } from '../helpers/app-client';
import { EchoResponder } from '../helpers/echo-responder';
import { FakeSysfsTty, usbAttributes } from '../helpers/fake-sysfs-tty';
import { cliAsync, freePort, httpGet, MeshProcess, operatorSecurity, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';
import { type TestHost, TestNetwork } from '../helpers/test-network';

const DEVICE_ID = 'usb-0403:6001:A50285BI';
const TTY = 'ttyRoam0';

/** One gateway: its sysfs-shaped tree naming its pty as the FTDI adapter, the directory its agent watches, and the pty while plugged. */
interface Gateway {
  name: string;
  host: TestHost;
  sysfs: FakeSysfsTty;
  dev: string;
  agent?: MeshProcess;
  pty?: PtyPair;
  echo?: EchoResponder;
}

interface RoamingMoveShown {
  from: string;
  to: string;
  outcome: string;
  heldBytes: number;
}

/**
 * Issue 19, acceptance 3, over the real processes: two gateways (agents in two network namespaces,
 * or on two loopback addresses where there are none: the test prints which), one control plane and
 * the sidecar beside the test, and a binding that names the device by its stable id without a host.
 * The device is a socat pty with an echo on its far end; each gateway's serial listing (agent
 * `--sysfs-root` / `--dev-root`) names its pty as the same USB adapter, so plugging the pty into a
 * gateway is that gateway reporting the id. One app stays connected through every move.
 */
describe('e2e: a roaming binding follows its device between gateways, its app connected throughout', function () {
  this.timeout(120_000);

  let net: TestNetwork;
  let tmp: string;
  let cp: string;
  let cpAdmin: string;
  let sidecarAdmin: string;
  let port: number;
  let client: ControlPlaneClient;
  let sidecar: MeshProcess | undefined;
  let app: AppClient | undefined;
  let controlPlane: MeshProcess | undefined;
  const gateways = new Map<string, Gateway>();
  const gw = (name: string): Gateway => gateways.get(name) as Gateway;

  const apply = async (holdMs: number): Promise<void> => {
    const text = `kind: Binding\nname: follow\nworkload: app1\ndevice: { id: "${DEVICE_ID}" }\nvirtual: { name: modem, protocol: raw, listen: 127.0.0.1:${port} }\npolicy: { roamingHoldMs: ${holdMs} }\n`;
    await client.call('Bindings', 'Apply', parseDocuments(text, 'binding.yaml'));
  };
  const mapping = async (): Promise<Mapping | undefined> =>
    (await client.call<ListMappingsResponse>('Bindings', 'ListMappings', {})).mappings.find((m) => m.binding === 'follow');
  const status = async (): Promise<BindingStatus | undefined> =>
    (await client.call<ListBindingsResponse>('Bindings', 'List', {})).bindings.find((b) => b.binding?.name === 'follow');
  const mappedTo = (host: string): Promise<Mapping> =>
    waitFor(`the binding to map to ${host}`, async () => {
      const m = await mapping();
      return m?.hostId === host ? m : undefined;
    }, 30_000);
  const stat = async (name: string): Promise<number> => {
    const line = (await httpGet(`http://${sidecarAdmin}/stats`)).body.split('\n').find((l) => l.startsWith(`${name}{`));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };
  const moves = async (): Promise<RoamingMoveShown[]> => (JSON.parse((await httpGet(`http://${sidecarAdmin}/config_dump`)).body) as { roamingMoves: RoamingMoveShown[] }).roamingMoves;
  /** The sidecar serves mapping version `version` of the binding. */
  const sidecarHas = (version: string): Promise<unknown> =>
    waitFor(`the sidecar to serve mapping version ${version}`, async () => {
      const dump = JSON.parse((await httpGet(`http://${sidecarAdmin}/config_dump`)).body) as { mappings: Array<{ binding: string; version: string }> };
      return dump.mappings.some((m) => m.binding === 'follow' && m.version === version) || undefined;
    }, 30_000);
  const heldOnce = async (before: number): Promise<unknown> => waitFor('the sidecar to hold the app connection', async () => (await stat('roaming_holds')) > before || undefined, 15_000);
  const token = async (kind: 'host' | 'workload', id: string): Promise<string> =>
    (await client.call<{ token: string }>('Identity', 'CreateToken', { kind, id, ttlSeconds: '600', reusable: false, allowedAddresses: [] })).token;

  async function plug(name: string): Promise<void> {
    const g = gw(name);
    g.pty = await PtyPair.create(path.join(g.dev, TTY), path.join(tmp, `peer-${name}`));
    g.echo = await EchoResponder.open(g.pty.peer);
  }
  async function pull(name: string): Promise<void> {
    const g = gw(name);
    await g.echo?.close();
    await g.pty?.remove();
    g.echo = undefined;
    g.pty = undefined;
  }

  before(async function () {
    if (!haveSocat()) {
      console.log('      skipped: socat is not installed (the README test command installs it)');
      this.skip();
    }
    net = new TestNetwork();
    console.log(`      gateways: ${net.reason}`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-roaming-'));
    cp = `${net.localAddress()}:${await freePort()}`;
    cpAdmin = `127.0.0.1:${await freePort()}`;
    sidecarAdmin = `127.0.0.1:${await freePort()}`;
    port = await freePort();
    const data = path.join(tmp, 'data');
    controlPlane = MeshProcess.start('e2e-roaming-control-plane', ['control-plane', '--listen', cp, '--admin', cpAdmin, '--data-dir', data]);
    // Tokens made in-process (one gRPC client, no CLI per token): on a loaded machine each CLI start costs seconds.
    const { caFile, operatorTokenFile } = clientCredentialFiles(data);
    await waitFor('the CA bundle and the operator credential', () => (fs.existsSync(caFile) && fs.existsSync(operatorTokenFile)) || undefined, 60_000);
    client = new ControlPlaneClient(cp, 15_000, operatorSecurity(data));
    await waitFor('the control plane to take the binding', () => apply(10_000).then(() => true), 60_000);
    for (const [name, n] of [['gwa', 1], ['gwb', 2]] as const) {
      const sysfs = new FakeSysfsTty();
      const usb = sysfs.usb('1-2', usbAttributes('0403', '6001', 'A50285BI', { product: 'FT232R USB UART\n' }));
      sysfs.tty(TTY, sysfs.device(path.relative(path.join(sysfs.root, 'devices'), path.join(usb, '1-2:1.0')), { bInterfaceNumber: '00\n' }), { dev: '188:0\n' });
      const dev = path.join(tmp, `dev-${name}`);
      fs.mkdirSync(dev);
      const host = net.host(name, n);
      const g: Gateway = { name, host, sysfs, dev };
      g.agent = host.start(`e2e-roaming-agent-${name}`, [
        'agent', '--host-id', name, '--control-plane', cp, '--listen', `${host.address}:${await freePort()}`, '--admin', `127.0.0.1:${await freePort()}`,
        '--sysfs-root', sysfs.root, '--dev-root', dev, '--watch', path.join(dev, 'ttyRoam*'), '--token', await token('host', name),
      ]);
      gateways.set(name, g);
    }
    sidecar = MeshProcess.start('e2e-roaming-sidecar', ['sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', sidecarAdmin, '--token', await token('workload', 'app1')]);
  });

  after(async () => {
    app?.close();
    client?.close();
    await Promise.all([sidecar?.stop(), ...[...gateways.values()].map((g) => g.agent?.stop()), controlPlane?.stop()]);
    for (const name of gateways.keys()) await pull(name);
    for (const g of gateways.values()) g.sysfs.remove();
    net?.close();
  });

  it('moves from A to B with the app connected: no byte sent during the move is lost, B answers the next request, describe binding shows the move', async () => {
    assert.equal((await status())?.phase, 'BINDING_PHASE_PENDING', 'no gateway has the device yet');
    await plug('gwa');
    const onA = await mappedTo('gwa');
    assert.equal(onA.physicalId, `gwa/${DEVICE_ID}`, 'gateway A names the pty by its USB id');
    assert.equal(onA.agentAddress.replace(/:\d+$/, ''), gw('gwa').host.address);
    await sidecarHas(onA.version);
    app = await waitFor('the virtual device', () => AppClient.connect(port).catch(() => undefined), 30_000);
    assert.equal((await app.roundTrip(Buffer.from('on A\n'), 15_000)).toString(), 'on A\n');

    const holds = await stat('roaming_holds');
    await pull('gwa');
    await heldOnce(holds);
    // Sent while no gateway has the device: held by the sidecar (within the queue depth), in two writes.
    const held = Buffer.from('held 1\nheld 2\n');
    app.socket.write(held.subarray(0, 7));
    app.socket.write(held.subarray(7));
    await waitFor('the held bytes counted', async () => (await stat('roaming_held_bytes')) >= held.length || undefined, 10_000);
    assert.equal(app.closed, false, 'the app connection stays open while the device is away');
    await plug('gwb');
    const onB = await mappedTo('gwb');
    assert.equal(onB.id, onA.id, 'the same mapping, moved');
    assert.equal((await app.take(held.length, 30_000)).toString(), held.toString(), 'the device on B got every held byte, in order');
    assert.equal((await app.roundTrip(Buffer.from('next\n'), 15_000)).toString(), 'next\n');
    assert.equal(gw('gwb').echo?.received, held.length + 'next\n'.length, 'B answered: it got the held bytes and the next request');
    assert.equal(app.closed, false);
    assert.equal(await stat('roaming_resumes'), 1);
    const [move] = await moves();
    assert.deepEqual(move && { from: move.from, to: move.to, outcome: move.outcome, heldBytes: move.heldBytes }, {
      from: `gwa/${DEVICE_ID}`, to: `gwb/${DEVICE_ID}`, outcome: 'resumed', heldBytes: held.length,
    });

    const described = await cliAsync(['describe', 'binding', 'follow', '--control-plane', cp, '--admin', cpAdmin]);
    assert.equal(described.code, 0, described.stderr);
    const addressB = gw('gwb').host.address.replace(/\./g, '\\.');
    assert.match(described.stdout, new RegExp(`Message: +mapped to gwb/${DEVICE_ID} via ${addressB}:`));
    assert.match(described.stdout, /Roaming hold: +10000 ms/);
    assert.match(described.stdout, new RegExp(`Moves:\\n  \\S+Z  gwa/${DEVICE_ID} → gwb/${DEVICE_ID}  \\(version \\d+, no gateway for \\d+ ms\\)\\n`));
    const shown = described.stdout.split('\n').filter((l) => /^(Device|Message|Moves| {2}\d{4}-)/.test(l));
    console.log(`      describe binding after the move:\n${shown.map((l) => `        ${l}`).join('\n')}`);
    console.log(`      the sidecar's move: ${JSON.stringify(move)}`);
  });

  it('reports the device on both gateways at once as a conflict, and keeps traffic on the first (B)', async () => {
    await plug('gwa');
    const conflicted = await waitFor('the conflict in the binding status', async () => {
      const s = await status();
      return s && /conflict/.test(s.message) ? s : undefined;
    }, 30_000);
    assert.match(conflicted.message, new RegExp(`^mapped to gwb/${DEVICE_ID} via [\\d.]+:\\d+; conflict: device ${DEVICE_ID} is reported by gwb, gwa at once, traffic stays on gwb$`));
    assert.equal((await mapping())?.hostId, 'gwb', 'one mapping, on the gateway that had it first');
    const endpoints = await cliAsync(['get', 'endpoints', '--control-plane', cp]);
    assert.equal(endpoints.code, 0, endpoints.stderr);
    const rows = endpoints.stdout.split('\n').filter((l) => l.includes(DEVICE_ID));
    assert.equal(rows.filter((l) => l.includes(`CONFLICT: ${DEVICE_ID} on gwb, gwa`)).length, 2, endpoints.stdout);
    console.log(`      get endpoints:\n${rows.map((r) => `        ${r}`).join('\n')}`);
    const [onA, onB] = [gw('gwa').echo?.received ?? 0, gw('gwb').echo?.received ?? 0];
    const request = Buffer.from('during the conflict\n');
    assert.equal((await app!.roundTrip(request, 15_000)).toString(), request.toString());
    assert.equal(gw('gwb').echo?.received, onB + request.length, 'B, the first, answered');
    assert.equal(gw('gwa').echo?.received, onA, 'A, the second, got nothing: traffic is never split');
  });

  it('follows the device to A when gateway B stops (a replaced gateway), the app held across', async () => {
    const holds = await stat('roaming_holds');
    await gw('gwb').agent?.stop();
    await heldOnce(holds);
    const onA = await mappedTo('gwa');
    assert.doesNotMatch((await status())?.message ?? '', /conflict/, 'one gateway has it now');
    const request = Buffer.from('after B stopped\n');
    assert.equal((await app!.roundTrip(request, 30_000)).toString(), request.toString());
    assert.equal(gw('gwa').echo?.received, request.length, 'A answered');
    assert.equal(app!.closed, false);
    assert.equal(await stat('roaming_resumes'), 2);
    await sidecarHas(onA.version);
  });

  it('closes the app connection with the clear error once the device has been away past roamingHoldMs', async () => {
    await apply(1_500);
    const m = await waitFor('the shorter hold in the mapping', async () => {
      const now = await mapping();
      return now?.policy?.roamingHoldMs === 1_500 ? now : undefined;
    }, 15_000);
    await sidecarHas(m.version);
    const held = app as AppClient;
    assert.equal((await held.roundTrip(Buffer.from('still on A\n'), 15_000)).toString(), 'still on A\n', 'a policy change keeps the app connected');
    const expiries = await stat('roaming_hold_expiries');
    await pull('gwa');
    held.socket.write('never answered\n');
    await waitFor('the app connection to be closed', () => held.closed || undefined, 20_000);
    assert.equal(await stat('roaming_hold_expiries'), expiries + 1);
    const last = (await moves()).at(-1);
    assert.equal(last?.outcome, 'expired');
    assert.equal(last?.from, `gwa/${DEVICE_ID}`);
    assert.match(sidecar?.output() ?? '', /removed; not back on any gateway within 1500 ms \(\d+ held bytes dropped\)/);
  });
});
