import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FramedConnection } from '../../src/socket-plane/connection';
import { dialAgent, joinAs } from '../helpers/mesh-member';
import type { ListBindingsResponse, ListEndpointsResponse, ListMappingsResponse, ListProxiesResponse } from '../../src/proto/types';
import { AppClient } from '../helpers/app-client';
import { EchoResponder } from '../helpers/echo-responder';
import { cli, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

/**
 * Issue 2's walking skeleton, end to end: control plane, agent and sidecar as separate processes
 * started through the CLI, a real pseudo-terminal pair from socat as the device, and a TCP app.
 */
describe('e2e: app → sidecar → agent → serial pty and back', function () {
  this.timeout(120_000);

  let tmp: string;
  let ports: Record<'cp' | 'cpAdmin' | 'agent' | 'agentAdmin' | 'sidecarAdmin' | 'virt1' | 'virt2', number>;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  let sidecar: MeshProcess;
  let pty0: PtyPair;
  let pty1: PtyPair;
  let echo0: EchoResponder;
  let echo1: EchoResponder;
  let cp: string;

  const get = <T>(what: string): T => {
    const r = cli(['get', what, '-o', 'json', '--control-plane', cp]);
    assert.equal(r.code, 0, `get ${what} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  const bindingYaml = (name: string, device: string, port: number, extra = ''): string => `
kind: Binding
name: ${name}
workload: app1
device: { host: gw1, path: ${device} }
virtual: { name: ${name}, protocol: raw, listen: 127.0.0.1:${port} }
policy: { sharing: exclusive, queueDepth: 64 }
serial: { baudRate: 115200, dataBits: 8, parity: none, stopBits: 1, flowControl: none }
${extra}`;

  const applyText = (text: string): ReturnType<typeof cli> => {
    const file = path.join(tmp, `apply-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(file, text);
    return cli(['apply', '-f', file, '--control-plane', cp]);
  };

  const startControlPlane = (): MeshProcess =>
    MeshProcess.start('e2e-control-plane', [
      'control-plane',
      '--listen', cp,
      '--admin', `127.0.0.1:${ports.cpAdmin}`,
      '--data-dir', path.join(tmp, 'data'),
    ]);

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (the README test command installs it)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-e2e-'));
    ports = {
      cp: await freePort(),
      cpAdmin: await freePort(),
      agent: await freePort(),
      agentAdmin: await freePort(),
      sidecarAdmin: await freePort(),
      virt1: await freePort(),
      virt2: await freePort(),
    };
    cp = `127.0.0.1:${ports.cp}`;
    pty0 = await PtyPair.create(path.join(tmp, 'ttyDM0'), path.join(tmp, 'peer0'));
    pty1 = await PtyPair.create(path.join(tmp, 'ttyDM1'), path.join(tmp, 'peer1'));
    echo0 = await EchoResponder.open(pty0.peer);
    echo1 = await EchoResponder.open(pty1.peer);

    controlPlane = startControlPlane();
    // The agent and sidecar may start before the control plane answers: they retry.
    agent = MeshProcess.start('e2e-agent', [
      'agent',
      '--host-id', 'gw1',
      '--control-plane', cp,
      '--listen', `127.0.0.1:${ports.agent}`,
      '--watch', path.join(tmp, 'tty*'),
      '--admin', `127.0.0.1:${ports.agentAdmin}`,
    ]);
    sidecar = MeshProcess.start('e2e-sidecar', [
      'sidecar',
      '--workload-id', 'app1',
      '--control-plane', cp,
      '--admin', `127.0.0.1:${ports.sidecarAdmin}`,
    ]);

    await waitFor('both ptys in the register', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      if (r.code !== 0) return false;
      const eps = (JSON.parse(r.stdout) as ListEndpointsResponse).endpoints;
      return eps.filter((e) => e.path.startsWith(tmp) && e.state === 'ENDPOINT_STATE_PRESENT').length === 2;
    }, 20_000);
    const applied = applyText(bindingYaml('app1-modem', pty0.device, ports.virt1));
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /binding\/app1-modem/);
    await waitFor('the virtual device to listen', () => AppClient.connect(ports.virt1).then((c) => (c.close(), true)), 15_000);
  });

  after(async () => {
    await Promise.all([sidecar?.stop(), agent?.stop(), controlPlane?.stop()]);
    await echo0?.close();
    await echo1?.close();
    await pty0?.remove();
    await pty1?.remove();
  });

  it('moves all 256 byte values both ways unchanged', async () => {
    const app = await AppClient.connect(ports.virt1);
    try {
      const up = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const down = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
      const sent = Buffer.concat([up, down]);
      assert.deepEqual(await app.roundTrip(sent), sent);
    } finally {
      app.close();
    }
  });

  it('moves 1 MiB both ways unchanged', async () => {
    const app = await AppClient.connect(ports.virt1);
    try {
      const data = Buffer.alloc(1 << 20);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
      const back = await app.roundTrip(data, 60_000);
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data), 'the 1 MiB came back changed');
    } finally {
      app.close();
    }
  });

  it('delete binding closes the listener within 2 s; re-apply brings it back', async () => {
    const live = await AppClient.connect(ports.virt1);
    const del = cli(['delete', 'binding', 'app1-modem', '--control-plane', cp]);
    assert.equal(del.code, 0, del.stderr);
    const started = Date.now();
    await waitFor('the listener to close', () => AppClient.connect(ports.virt1).then((c) => (c.close(), false), () => true), 2000);
    assert.ok(Date.now() - started <= 2000);
    await waitFor('the live connection to be closed', () => live.closed, 2000);
    assert.equal(get<ListMappingsResponse>('mappings').mappings.filter((m) => m.binding === 'app1-modem').length, 0);

    assert.equal(applyText(bindingYaml('app1-modem', pty0.device, ports.virt1)).code, 0);
    const app = await waitFor('the listener to come back', () => AppClient.connect(ports.virt1).catch(() => undefined), 5000);
    assert.deepEqual(await app.roundTrip(Buffer.from('back again\n')), Buffer.from('back again\n'));
    app.close();
  });

  it('survives a control-plane restart: state kept, the live app connection never cut', async () => {
    const app = await AppClient.connect(ports.virt1);
    assert.deepEqual(await app.roundTrip(Buffer.from('before\n')), Buffer.from('before\n'));
    const before = get<ListMappingsResponse>('mappings');
    const mapping = before.mappings.find((m) => m.binding === 'app1-modem');
    assert.ok(mapping, 'mapping exists before the restart');

    await controlPlane.stop('SIGKILL');
    // While the control plane is down the data path is untouched.
    assert.deepEqual(await app.roundTrip(Buffer.from('while down\n')), Buffer.from('while down\n'));

    controlPlane = startControlPlane();
    await waitFor('the control plane to answer', () => cli(['get', 'bindings', '-o', 'json', '--control-plane', cp]).code === 0, 15_000);
    const bindings = get<ListBindingsResponse>('bindings');
    assert.ok(bindings.bindings.some((b) => b.binding?.name === 'app1-modem'), 'binding survived');
    const after = get<ListMappingsResponse>('mappings');
    const same = after.mappings.find((m) => m.binding === 'app1-modem');
    assert.equal(same?.id, mapping.id, 'mapping survived with the same id');
    assert.ok(BigInt(after.version) >= BigInt(before.version), 'version did not go back');
    await waitFor('sidecar and agent to reconnect', () => {
      const proxies = get<ListProxiesResponse>('proxies').proxies;
      return proxies.some((p) => p.kind === 'sidecar' && p.nodeId === 'app1') && proxies.some((p) => p.kind === 'agent' && p.nodeId === 'gw1');
    }, 20_000);
    assert.deepEqual(await app.roundTrip(Buffer.from('after\n')), Buffer.from('after\n'));
    assert.equal(app.closed, false);
    app.close();
  });

  it('records a NACK (virtual address taken), shows it in get proxies, keeps serving the other mapping', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(ports.virt2, '127.0.0.1', r));
    try {
      assert.equal(applyText(bindingYaml('app1-second', pty1.device, ports.virt2)).code, 0);
      const nacked = await waitFor('a NACK in get proxies', () => {
        const sc = get<ListProxiesResponse>('proxies').proxies.find((p) => p.kind === 'sidecar' && p.nodeId === 'app1');
        return sc?.types.find((t) => t.state === 'SYNC_STATE_NACKED');
      }, 10_000);
      assert.match(nacked.nackMessage, new RegExp(String(ports.virt2)));
      const table = cli(['get', 'proxies', '--control-plane', cp]);
      assert.match(table.stdout, /sidecar\/app1 .*NACKED/);
      const app = await AppClient.connect(ports.virt1);
      assert.deepEqual(await app.roundTrip(Buffer.from('still here\n')), Buffer.from('still here\n'));
      app.close();
    } finally {
      await new Promise((r) => blocker.close(r));
      cli(['delete', 'binding', 'app1-second', '--control-plane', cp]);
    }
  });

  it('refuses an unknown workload with a made-up mapping id; the device is not opened', async () => {
    const statsBefore = (await httpGet(`http://127.0.0.1:${ports.agentAdmin}/stats`)).body;
    const echoBefore = echo1.received;
    // A real mesh member (it holds a workload certificate of this CA) that no binding names.
    const intruder = await joinAs(cp, 'workload', 'intruder');
    const conn = new FramedConnection(await dialAgent(ports.agent, 'gw1', intruder.material), 'client');
    intruder.close();
    await assert.rejects(conn.openSession({ mappingId: 'made-up-0000', workloadId: 'intruder' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'NOT_FOUND');
      assert.match(err.message, /unknown mapping made-up-0000/);
      return true;
    });
    const mapping = get<ListMappingsResponse>('mappings').mappings.find((m) => m.binding === 'app1-modem');
    await assert.rejects(conn.openSession({ mappingId: mapping!.id, workloadId: 'intruder' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PERMISSION_DENIED');
      assert.match(err.message, /does not belong to workload intruder/);
      return true;
    });
    conn.destroy();
    const statsAfter = (await httpGet(`http://127.0.0.1:${ports.agentAdmin}/stats`)).body;
    const opened = (s: string): number => Number(/^sessions_opened: (\d+)$/m.exec(s)?.[1] ?? '0');
    assert.equal(opened(statsAfter), opened(statsBefore), 'no session was opened for the refused requests');
    assert.match(statsAfter, /sessions_refused/);
    assert.equal(echo1.received, echoBefore);
  });

  it('answers garbage on the socket plane with a clear error and keeps serving', async () => {
    // Garbage from an authenticated peer (after the TLS handshake): the socket-plane parser's answers.
    const member = await joinAs(cp, 'workload', 'app1');
    const goAwayReason = async (bytes: Buffer): Promise<string> => {
      const socket = await dialAgent(ports.agent, 'gw1', member.material);
      let got = Buffer.alloc(0);
      socket.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
      socket.on('error', () => undefined);
      socket.write(bytes);
      await new Promise((r) => socket.once('close', r));
      return got.toString('latin1');
    };
    assert.match(await goAwayReason(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), /bad preface/);
    const garbageFrame = Buffer.concat([Buffer.from('DMSP/1\r\n'), Buffer.from([0, 0, 0, 1, 0x99, 0, 0, 0, 1, 0x42])]);
    assert.match(await goAwayReason(garbageFrame), /unknown frame type 0x99/);
    const tooBig = Buffer.concat([Buffer.from('DMSP/1\r\n'), Buffer.from([0x7f, 0xff, 0xff, 0xff, 3, 0, 0, 0, 1])]);
    assert.match(await goAwayReason(tooBig), /exceeds the limit/);
    member.close();
    // Plaintext on the mTLS port: closed without a socket-plane answer.
    const plain = net.connect({ host: '127.0.0.1', port: ports.agent });
    plain.on('error', () => undefined);
    let plainGot = '';
    plain.on('data', (c: Buffer) => (plainGot += c.toString('latin1')));
    await new Promise((r) => plain.once('connect', r));
    plain.write('DMSP/1\r\n');
    await new Promise((r) => plain.once('close', r));
    assert.doesNotMatch(plainGot, /DMSP/);
    const app = await AppClient.connect(ports.virt1);
    assert.deepEqual(await app.roundTrip(Buffer.from('unharmed\n')), Buffer.from('unharmed\n'));
    app.close();
    assert.equal(agent.child.exitCode, null, 'agent still running');
  });

  it('answers malformed documents with one clear line, stores nothing, keeps running', () => {
    const before = get<ListBindingsResponse>('bindings').bindings.map((b) => b.binding?.name).sort();
    const cases: [string, RegExp][] = [
      ['kind: Binding\nname: [oops\n', /invalid YAML at line/],
      [bindingYaml('typo', pty1.device, ports.virt2, 'wokload: app2'), /wokload: unknown field/],
      [bindingYaml('baud0', pty1.device, ports.virt2).replace('baudRate: 115200', 'baudRate: 0'), /serial\.baudRate: 0 is out of range/],
      [bindingYaml('maybe', pty1.device, ports.virt2).replace('parity: none', 'parity: maybe'), /serial\.parity: "maybe" is not one of/],
      // All-or-nothing: a good document next to a bad one is not stored either.
      [bindingYaml('good-one', pty1.device, ports.virt2) + '---\n' + 'kind: Policy\nname: p1\nsharing: sometimes\n', /sharing: "sometimes"/],
    ];
    for (const [text, pattern] of cases) {
      const r = applyText(text);
      assert.notEqual(r.code, 0, `accepted: ${text}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, `not one line: ${r.stderr}`);
    }
    const conflict = applyText(bindingYaml('app1-clash', pty0.device, ports.virt2));
    assert.notEqual(conflict.code, 0, 'a second exclusive binding on one device must be refused');
    assert.match(conflict.stderr, /binding\/app1-clash/);
    const after = get<ListBindingsResponse>('bindings').bindings.map((b) => b.binding?.name).sort();
    assert.deepEqual(after, before);
    assert.equal(controlPlane.child.exitCode, null, 'control plane still running');
  });
});
