import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ListBindingsResponse, ListEndpointsResponse, ListMappingsResponse, ListProxiesResponse } from '../../src/proto/types';
import { AppClient } from '../helpers/app-client';
import { rawSerialBinding } from '../helpers/binding-yaml';
import { EchoResponder } from '../helpers/echo-responder';
import { cli, cliAsync, freePort, MeshProcess, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

/**
 * Issue 15, finding 1 and the token half of 5, with real processes on loopback: a second agent
 * for gw1 holding a copied token cannot capture a session (and killing it leaves the real agent
 * serving); a used single-use token is refused; an agent advertises only the addresses its token
 * pins; deleting a token, or `devicemesh identity revoke`, closes the identity's discovery stream
 * and its socket-plane sessions within 1 s.
 */
describe('e2e: one agent per host, single-use tokens, revocation', function () {
  this.timeout(180_000);

  let tmp: string;
  let cp: string;
  let ports: Record<'cp' | 'cpAdmin' | 'agent' | 'agentAdmin' | 'rogue' | 'rogueAdmin' | 'sidecarAdmin' | 'virt' | 'pinned' | 'pinnedAdmin', number>;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  let sidecar: MeshProcess;
  let pty: PtyPair;
  let echo: EchoResponder;
  const others: MeshProcess[] = [];

  const json = <T>(args: string[]): T => {
    const r = cli([...args, '-o', 'json', '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const proxies = (): string[] => json<ListProxiesResponse>(['get', 'proxies']).proxies.map((p) => `${p.kind}/${p.nodeId}`).sort();
  const agentAddresses = (): string[] => json<ListMappingsResponse>(['get', 'mappings']).mappings.map((m) => m.agentAddress);
  const endpointPresent = (): boolean =>
    json<ListEndpointsResponse>(['get', 'endpoints']).endpoints.some((e) => e.path === pty.device && e.state === 'ENDPOINT_STATE_PRESENT');
  const makeToken = (args: string[]): string => {
    const r = cli(['token', 'create', ...args, '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const tokenFile = (name: string, token: string): string => {
    const file = path.join(tmp, `${name}.token`);
    fs.writeFileSync(file, token, { mode: 0o600 });
    return file;
  };
  const startAgent = (name: string, hostId: string, listen: number, admin: number, extra: string[]): MeshProcess => {
    const p = MeshProcess.start(name, ['agent', '--host-id', hostId, '--control-plane', cp, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, ...extra]);
    others.push(p);
    return p;
  };
  const startRealAgent = (token: string): MeshProcess =>
    startAgent('e2e-host-agent', 'gw1', ports.agent, ports.agentAdmin, [
      '--watch', path.join(tmp, 'tty*'), '--token-file', tokenFile(`gw1-${Date.now()}`, token), '--identity-dir', path.join(tmp, `gw1-identity-${Date.now()}`),
    ]);
  const roundTrips = async (app: AppClient, n: number, tag: string): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const line = Buffer.from(`${tag} ${i}\n`);
      assert.deepEqual(await app.roundTrip(line), line);
    }
  };
  /** A raw app on the virtual device once the binding is mapped again. */
  const connectApp = (): Promise<AppClient> =>
    waitFor('the virtual device', async () => {
      const app = await AppClient.connect(ports.virt).catch(() => undefined);
      if (!app) return undefined;
      try {
        await roundTrips(app, 1, 'probe');
        return app;
      } catch {
        app.close();
        return undefined;
      }
    }, 30_000);
  /** When the app's connection closes after `action` returns, in ms from then (Infinity after 5 s). */
  const closedAfter = async (app: AppClient, action: () => Promise<void>): Promise<number> => {
    const closed = new Promise<number>((resolve) => app.socket.once('close', () => resolve(Date.now())));
    await action();
    const done = Date.now();
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Number.POSITIVE_INFINITY), 5000))]);
    return at - done;
  };
  /** When `member` logged its discovery stream's loss for a revoked certificate, in ms after `since` (Infinity: not within 5 s). */
  const streamLostAfter = async (member: MeshProcess, since: number): Promise<number> => {
    const lost = (): number | undefined => {
      for (const line of member.output().split('\n')) {
        if (!line.includes('discovery stream lost') || !line.includes('was revoked')) continue;
        return (JSON.parse(line) as { time: number }).time - since;
      }
      return undefined;
    };
    return waitFor('the discovery stream lost', lost, 5000).catch(() => Number.POSITIVE_INFINITY);
  };

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-e2e-host-'));
    ports = {
      cp: await freePort(),
      cpAdmin: await freePort(),
      agent: await freePort(),
      agentAdmin: await freePort(),
      rogue: await freePort(),
      rogueAdmin: await freePort(),
      sidecarAdmin: await freePort(),
      virt: await freePort(),
      pinned: await freePort(),
      pinnedAdmin: await freePort(),
    };
    cp = `127.0.0.1:${ports.cp}`;
    pty = await PtyPair.create(path.join(tmp, 'ttyHOST0'), path.join(tmp, 'peer0'));
    echo = await EchoResponder.open(pty.peer);
    controlPlane = MeshProcess.start('e2e-host-control-plane', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${ports.cpAdmin}`, '--data-dir', path.join(tmp, 'data')]);
    // A DaemonSet's token: reusable, so that a copy of it joins too (the worst case for takeover).
    const daemonSetToken = await waitFor('a token', () => {
      const r = cli(['token', 'create', '--host', 'gw1', '--reusable', '--control-plane', cp]);
      return r.code === 0 ? r.stdout.trim() : undefined;
    }, 30_000);
    agent = startRealAgent(daemonSetToken);
    sidecar = MeshProcess.start('e2e-host-sidecar', ['sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${ports.sidecarAdmin}`]);
    others.push(sidecar);
    await waitFor('the pty in the register', endpointPresent, 30_000);
    const file = path.join(tmp, 'binding.yaml');
    fs.writeFileSync(file, rawSerialBinding('host-modem', 'app1', 'gw1', pty.device, ports.virt));
    const r = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    (await connectApp()).close();
    // Kept for the takeover test: the token a local user read from a process listing.
    fs.writeFileSync(path.join(tmp, 'copied.token'), daemonSetToken);
  });

  after(async () => {
    await Promise.all(others.map((p) => p.stop()));
    await controlPlane?.stop();
    await echo?.close();
    await pty?.remove();
  });

  it('a second agent for gw1 with a copied token captures no session, and killing it leaves the real agent serving', async () => {
    const realAddress = `127.0.0.1:${ports.agent}`;
    assert.deepEqual(agentAddresses(), [realAddress]);
    const app = await connectApp();
    try {
      const copied = fs.readFileSync(path.join(tmp, 'copied.token'), 'utf8');
      // The attacker's agent: same host id, its own socket plane, and a device of its own to report for gw1.
      const rogue = startAgent('e2e-host-rogue', 'gw1', ports.rogue, ports.rogueAdmin, ['--token-file', tokenFile('rogue', copied), '--simulate', 'modem']);
      await waitFor('the rogue agent to be refused its discovery stream', () => /already has a live agent/.test(controlPlane.output()), 30_000);
      assert.match(controlPlane.output(), /second agent stream for a host refused/);
      // It kept trying, and every try was refused, while sessions went on through the real agent.
      for (let round = 0; round < 5; round++) {
        await roundTrips(app, 10, `during ${round}`);
        assert.deepEqual(agentAddresses(), [realAddress], 'the mapping still names the real agent');
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.deepEqual(proxies(), ['agent/gw1', 'sidecar/app1']);
      // Its report of gw1's devices (its modem, not the pty) was refused too: the real device stays present.
      await waitFor('the rogue\'s device report refused', () => /not_host_owner/.test(controlPlane.output()), 15_000);
      assert.ok(endpointPresent(), 'the real agent\'s device is still present');
      assert.ok(!json<ListEndpointsResponse>(['get', 'endpoints']).endpoints.some((e) => e.path.startsWith('sim:')), 'the rogue registered nothing');
      await rogue.stop('SIGKILL');
      await new Promise((r) => setTimeout(r, 1000));
      await roundTrips(app, 10, 'after');
      assert.equal(app.closed, false);
      assert.deepEqual(agentAddresses(), [realAddress]);
      const statuses = json<ListBindingsResponse>(['get', 'bindings']).bindings.map((b) => b.phase);
      assert.deepEqual(statuses, ['BINDING_PHASE_MAPPED']);
    } finally {
      app.close();
    }
    // The next app (the device is exclusive: one at a time) reaches the real device too.
    const next = await connectApp();
    try {
      await roundTrips(next, 5, 'next');
    } finally {
      next.close();
    }
  });

  it('refuses a used single-use token, saying so, and warns about a token on the command line', async () => {
    const once = makeToken(['--host', 'gw2']);
    const first = startAgent('e2e-host-gw2-first', 'gw2', await freePort(), await freePort(), ['--token', once]);
    // Its output is read between the CLI calls (they block), so wait for both.
    await waitFor('gw2 to join', () => /warning: --token puts a secret on the command line/.test(first.output()) && proxies().includes('agent/gw2'), 30_000);
    await first.stop();
    const second = startAgent('e2e-host-gw2-second', 'gw2', await freePort(), await freePort(), ['--token', once]);
    const code = await Promise.race([second.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 30_000))]);
    assert.notEqual(code, 0);
    assert.notEqual(code, 'still running');
    assert.match(second.output(), /single-use and was used at/);
    const list = json<{ tokens: { spiffeId: string; reusable: boolean; usedAt: unknown }[] }>(['token', 'list']);
    const gw2 = list.tokens.find((t) => t.spiffeId.endsWith('/host/gw2'));
    assert.equal(gw2?.reusable, false);
    assert.ok(gw2?.usedAt, 'the list says when it was used');
  });

  it('lets an agent advertise only the socket-plane address its token pins', async () => {
    const pinned = `127.0.0.1:${ports.pinned}`;
    const elsewhere = await freePort();
    const token = makeToken(['--host', 'gw3', '--allow-address', pinned]);
    const wrong = startAgent('e2e-host-gw3-wrong', 'gw3', elsewhere, ports.pinnedAdmin, ['--token-file', tokenFile('gw3', token), '--identity-dir', path.join(tmp, 'gw3-identity')]);
    await waitFor('the unpinned address to be refused', () => /may advertise only 127\.0\.0\.1:\d+ as its socket plane, not 127\.0\.0\.1:\d+/.test(controlPlane.output()), 30_000);
    assert.ok(!proxies().includes('agent/gw3'));
    await wrong.stop();
    // The same member on the pinned address (its stored certificate: the token was single-use).
    const right = startAgent('e2e-host-gw3-right', 'gw3', ports.pinned, ports.pinnedAdmin, ['--identity-dir', path.join(tmp, 'gw3-identity')]);
    await waitFor('gw3 on its pinned address', () => proxies().includes('agent/gw3'), 30_000);
    await right.stop();
  });

  it('deleting a token revokes the identity it issued: its discovery stream and sessions close within 1 s', async () => {
    const app = await connectApp();
    const tokens = json<{ tokens: { id: string; spiffeId: string }[] }>(['token', 'list']).tokens;
    const gw1 = tokens.filter((t) => t.spiffeId.endsWith('/host/gw1'));
    assert.equal(gw1.length, 1);
    let deletedAt = 0;
    const closeMs = await closedAfter(app, async () => {
      const r = await cliAsync(['token', 'delete', (gw1[0] as { id: string }).id, '--control-plane', cp]);
      deletedAt = Date.now();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /revoked spiffe:\/\/devicemesh\.local\/host\/gw1/);
    });
    const streamMs = await streamLostAfter(agent, deletedAt);
    console.log(`      app connection closed ${closeMs} ms, the agent's discovery stream ended ${streamMs} ms after \`token delete\` returned`);
    assert.ok(closeMs <= 1000, `session closed ${closeMs} ms after the revocation`);
    assert.ok(streamMs <= 1000, `discovery stream ended ${streamMs} ms after the revocation`);
    assert.ok(!proxies().includes('agent/gw1'));
    // The revoked agent keeps trying and is refused; the binding waits for an agent of gw1.
    await waitFor('the revoked agent refused again', () => /revoked_certificate/.test(controlPlane.output()), 15_000);
    assert.deepEqual(json<ListBindingsResponse>(['get', 'bindings']).bindings.map((b) => b.phase), ['BINDING_PHASE_PENDING']);
    assert.deepEqual(agentAddresses(), []);
    // A new join of gw1 (new token, new identity dir) serves again.
    await agent.stop();
    agent = startRealAgent(makeToken(['--host', 'gw1']));
    const again = await connectApp();
    again.close();
  });

  it('`devicemesh identity revoke workload/app1` closes its discovery stream and sessions within 1 s and refuses its renewals', async () => {
    const app = await connectApp();
    let revokedAt = 0;
    const closeMs = await closedAfter(app, async () => {
      const r = await cliAsync(['identity', 'revoke', 'workload/app1', '--control-plane', cp]);
      revokedAt = Date.now();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^spiffe:\/\/devicemesh\.local\/workload\/app1 revoked \(\d+ certificates?\)\n$/);
    });
    const streamMs = await streamLostAfter(sidecar, revokedAt);
    console.log(`      app connection closed ${closeMs} ms, the sidecar's discovery stream ended ${streamMs} ms after \`identity revoke\` returned`);
    assert.ok(closeMs <= 1000, `session closed ${closeMs} ms after the revocation`);
    assert.ok(streamMs <= 1000, `discovery stream ended ${streamMs} ms after the revocation`);
    assert.ok(!proxies().includes('sidecar/app1'));
    // New sessions of the revoked sidecar are refused at the agent's handshake.
    const retry = await AppClient.connect(ports.virt).catch(() => undefined);
    if (retry) {
      await waitFor('the retried app connection to close', () => retry.closed, 15_000);
      assert.equal(retry.received, 0);
    }
    await waitFor('the agent to refuse the revoked certificate', () => /peer certificate revoked|was revoked/.test(agent.output()), 15_000);
    const again = cli(['identity', 'revoke', 'workload/app1', '--control-plane', cp]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no certificate that is valid and not revoked/);
    const bad = cli(['identity', 'revoke', 'gw1', '--control-plane', cp]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /neither host\/<id> nor workload\/<id>/);
  });
});
