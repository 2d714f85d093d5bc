import { strict as assert } from 'node:assert';
import * as net from 'node:net';
import { type RunningSidecar, startSidecar } from '../../../sidecar/main';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';
import { FakeAdsServer } from './fake-ads-server';
import { FakeAgent } from './fake-agent';
import { AppClient, connectRefused, freePort, httpGet, mapping, testLogger, waitUntil, withTimeout, WORKLOAD } from './helpers';

/** A value from the admin's /stats text, e.g. stat(text, 'app_connections{mapping=m1,binding=m1,device=gw1/m1}'). */
function stat(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series}: `));
  return line ? Number(line.slice(series.length + 2)) : 0;
}

async function stats(sidecar: RunningSidecar): Promise<string> {
  return (await httpGet(sidecar.adminAddress, '/stats')).body;
}

async function configDump(sidecar: RunningSidecar): Promise<Record<string, unknown>> {
  return JSON.parse((await httpGet(sidecar.adminAddress, '/config_dump')).body) as Record<string, unknown>;
}

describe('sidecar (against an in-test control plane and agent)', () => {
  let ads: FakeAdsServer;
  let agent: FakeAgent;
  let sidecar: RunningSidecar;
  const cleanups: Array<() => unknown> = [];

  beforeEach(async () => {
    ads = await FakeAdsServer.start();
    agent = await FakeAgent.start();
    // The fake ADS server serves plaintext and has no Identity service.
    sidecar = await startSidecar({ workloadId: WORKLOAD, controlPlane: ads.address, admin: '127.0.0.1:0', log: testLogger(), security: { insecure: true } });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await sidecar.close();
    ads.stop();
    await agent.close();
  });

  async function listenAddress(): Promise<string> {
    return `127.0.0.1:${await freePort()}`;
  }

  it('is not ready before the first mapping set and ready after it, even an empty one', async () => {
    await ads.waitFor((r) => r.kind === 'subscribe' && r.typeUrl === MAPPING_TYPE_URL);
    assert.equal((await httpGet(sidecar.adminAddress, '/ready')).status, 503);
    ads.push('1', []);
    await ads.waitForAck('1');
    assert.equal((await httpGet(sidecar.adminAddress, '/ready')).status, 200);
    const subscribe = ads.requests.find((r) => r.kind === 'subscribe');
    assert.equal(subscribe?.nodeId, WORKLOAD);
  });

  it('relays every byte value, 1 MiB each way, unchanged through the agent', async () => {
    const listen = await listenAddress();
    ads.push('1', [mapping('m1', listen, agent.address)]);
    await ads.waitForAck('1');

    const app = await AppClient.connect(listen);
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    assert.ok((await app.roundTrip(all)).equals(all));

    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 0xff;
    assert.ok((await app.roundTrip(big, 20_000)).equals(big), '1 MiB came back changed');
    assert.deepEqual(agent.opens, [{ mappingId: 'm1', workloadId: WORKLOAD }]);

    const text = await stats(sidecar);
    assert.equal(stat(text, 'app_connections{mapping=m1,binding=m1,device=gw1/m1}'), 1);
    assert.equal(stat(text, 'bytes_app_to_device{mapping=m1,binding=m1,device=gw1/m1}'), 256 + big.length);
    assert.equal(stat(text, 'bytes_device_to_app{mapping=m1,binding=m1,device=gw1/m1}'), 256 + big.length);
    assert.equal(stat(text, 'listeners'), 1);

    const dump = await configDump(sidecar);
    assert.equal(dump.workloadId, WORKLOAD);
    assert.equal(dump.controlPlaneConnected, true);
    assert.deepEqual(dump.versions, { [MAPPING_TYPE_URL]: '1' });
    assert.deepEqual(
      (dump.mappings as Array<Record<string, unknown>>).map((m) => [m.id, m.version, m.listen, m.connections]),
      [['m1', '1', listen, 1]],
    );
    assert.equal(dump.lastNack, null);
    app.destroy();
  });

  it('lets an app half-close and still read the answer', async () => {
    const listen = await listenAddress();
    ads.push('1', [mapping('m1', listen, agent.address)]);
    await ads.waitForAck('1');
    const app = await AppClient.connect(listen);
    app.socket.end('last words');
    await withTimeout(app.closed, 5_000, 'the connection to close after both sides ended');
    assert.equal(Buffer.concat(app.received).toString(), 'last words');
  });

  it('closes a withdrawn device and its live connections within 2 s, and serves it again when re-added', async () => {
    const listen = await listenAddress();
    const m1 = mapping('m1', listen, agent.address);
    ads.push('1', [m1]);
    await ads.waitForAck('1');
    const app = await AppClient.connect(listen);
    await app.roundTrip(Buffer.from('ping'));
    await waitUntil(() => agent.sessions.size === 1, 'the agent session');

    const started = Date.now();
    ads.push('2', []);
    await withTimeout(app.closed, 2_000, 'the live connection to close');
    assert.ok(Date.now() - started < 2_000);
    assert.ok(await connectRefused(listen), 'the listener is still accepting');
    await ads.waitForAck('2');
    // The agent learns the session is over (RESET), it is not left dangling.
    await waitUntil(() => agent.sessions.size === 0, 'the agent session to end', 2_000);

    ads.push('3', [m1]);
    await ads.waitForAck('3');
    const again = await AppClient.connect(listen);
    assert.equal((await again.roundTrip(Buffer.from('back'))).toString(), 'back');
    again.destroy();
  });

  it('NACKs a mapping whose listen address is taken, naming it, while another one in the same push serves', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    const taken = `127.0.0.1:${(squatter.address() as net.AddressInfo).port}`;
    const good = await listenAddress();

    ads.push('1', [mapping('blocked', taken, agent.address), mapping('fine', good, agent.address)]);
    const nack = await ads.waitForNack();
    assert.equal(nack.version, '');
    assert.match(nack.message, /mapping blocked: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    assert.doesNotMatch(nack.message, /mapping fine/);

    const app = await AppClient.connect(good);
    assert.equal((await app.roundTrip(Buffer.from('ok'))).toString(), 'ok');
    app.destroy();
    const dump = await configDump(sidecar);
    assert.deepEqual((dump.mappings as Array<{ id: string }>).map((m) => m.id), ['fine']);
    assert.match((dump.lastNack as { message: string }).message, /mapping blocked/);
    // Ready: it serves what it could.
    assert.equal((await httpGet(sidecar.adminAddress, '/ready')).status, 200);

    // Once the address is free, the same set applies in full.
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    ads.push('2', [mapping('blocked', taken, agent.address), mapping('fine', good, agent.address)]);
    await ads.waitForAck('2');
    const now = await AppClient.connect(taken);
    assert.equal((await now.roundTrip(Buffer.from('free'))).toString(), 'free');
    now.destroy();
  });

  it('NACKs a mapping without a protocol it serves', async () => {
    const listen = await listenAddress();
    ads.push('1', [mapping('m1', listen, agent.address, 'VIRTUAL_PROTOCOL_UNSPECIFIED')]);
    const nack = await ads.waitForNack();
    assert.match(nack.message, /mapping m1: protocol VIRTUAL_PROTOCOL_UNSPECIFIED is not one this sidecar serves \(raw, rfc2217, grpc, pty, modbus-tcp\)/);
    assert.ok(await connectRefused(listen));
  });

  it('keeps serving its last good mappings without the control plane, and resubscribes when it is back', async () => {
    const listen = await listenAddress();
    const m1 = mapping('m1', listen, agent.address);
    ads.push('1', [m1]);
    await ads.waitForAck('1');
    const live = await AppClient.connect(listen);
    await live.roundTrip(Buffer.from('before'));

    const port = Number(ads.address.split(':')[1]);
    ads.stop();
    await waitUntil(async () => (await configDump(sidecar)).controlPlaneConnected === false, 'the sidecar to notice');
    assert.equal((await live.roundTrip(Buffer.from('during'))).toString(), 'during');
    const fresh = await AppClient.connect(listen);
    assert.equal((await fresh.roundTrip(Buffer.from('new app'))).toString(), 'new app');
    assert.equal((await httpGet(sidecar.adminAddress, '/ready')).status, 200);

    ads = await FakeAdsServer.start(port);
    ads.push('2', [m1]);
    const subscribe = await ads.waitFor((r) => r.kind === 'subscribe', 20_000);
    // It tells the new control plane what it runs, as Envoy does.
    assert.equal(subscribe.version, '1');
    await ads.waitForAck('2', 20_000);
    assert.equal((await live.roundTrip(Buffer.from('after'))).toString(), 'after');
    live.destroy();
    fresh.destroy();
  });

  it('closes the app connection and counts it when the agent refuses the OPEN', async () => {
    agent.policy = (req) => ({ code: 'PERMISSION_DENIED', message: `workload ${req.workloadId} may not use this device` });
    const listen = await listenAddress();
    ads.push('1', [mapping('m1', listen, agent.address)]);
    await ads.waitForAck('1');
    const app = await AppClient.connect(listen);
    app.socket.write('hello?');
    await withTimeout(app.closed, 5_000, 'the refused connection to close');
    assert.equal(app.receivedLength, 0);
    const text = await stats(sidecar);
    assert.equal(stat(text, 'app_connections_refused{reason=PERMISSION_DENIED}'), 1);
  });

  it('closes the app connection and counts it when the agent is unreachable', async () => {
    const listen = await listenAddress();
    ads.push('1', [mapping('m1', listen, `127.0.0.1:${await freePort()}`)]);
    await ads.waitForAck('1');
    const app = await AppClient.connect(listen);
    await withTimeout(app.closed, 5_000, 'the connection to close');
    assert.equal(stat(await stats(sidecar), 'app_connections_refused{reason=UNAVAILABLE}'), 1);
  });

  it('closes sessions when the agent dies and reconnects for new app connections once it is back', async () => {
    const listen = await listenAddress();
    ads.push('1', [mapping('m1', listen, agent.address)]);
    await ads.waitForAck('1');
    const app = await AppClient.connect(listen);
    await app.roundTrip(Buffer.from('one'));

    const port = Number(agent.address.split(':')[1]);
    await agent.close();
    await withTimeout(app.closed, 2_000, 'the app connection to close with its agent');

    agent = await FakeAgent.start(port);
    const next = await AppClient.connect(listen);
    assert.equal((await next.roundTrip(Buffer.from('two'))).toString(), 'two');
    next.destroy();
  });

  it('updates a mapping in place: live connections stay, new ones follow the new agent', async () => {
    const listen = await listenAddress();
    ads.push('1', [mapping('m1', listen, agent.address)]);
    await ads.waitForAck('1');
    const live = await AppClient.connect(listen);
    await live.roundTrip(Buffer.from('old agent'));

    const second = await FakeAgent.start();
    cleanups.push(() => second.close());
    ads.push('2', [{ ...mapping('m1', listen, second.address), version: '2' }]);
    await ads.waitForAck('2');
    assert.equal((await live.roundTrip(Buffer.from('still old'))).toString(), 'still old');
    assert.equal(agent.sessions.size, 1);

    const fresh = await AppClient.connect(listen);
    await fresh.roundTrip(Buffer.from('new agent'));
    assert.equal(second.opens.length, 1);

    // Re-pushing the same set disturbs nothing.
    ads.push('3', [{ ...mapping('m1', listen, second.address), version: '2' }]);
    await ads.waitForAck('3');
    assert.equal((await live.roundTrip(Buffer.from('untouched'))).toString(), 'untouched');
    live.destroy();
    fresh.destroy();
  });

  it('rebinds a device whose listen address changed, even onto the address another device leaves', async () => {
    const a = await listenAddress();
    const b = await listenAddress();
    const c = await listenAddress();
    ads.push('1', [mapping('m1', a, agent.address), mapping('m2', b, agent.address)]);
    await ads.waitForAck('1');
    // m1 moves onto m2's address, m2 moves away: listed first, m1 binds only once m2 has moved.
    ads.push('2', [mapping('m1', b, agent.address), mapping('m2', c, agent.address)]);
    await ads.waitForAck('2');
    assert.ok(await connectRefused(a));
    const dump = await configDump(sidecar);
    assert.deepEqual((dump.mappings as Array<{ id: string; listen: string }>).map((m) => [m.id, m.listen]), [['m1', b], ['m2', c]]);
    const app = await AppClient.connect(b);
    await app.roundTrip(Buffer.from('moved'));
    assert.deepEqual(agent.opens.at(-1), { mappingId: 'm1', workloadId: WORKLOAD });
    app.destroy();
  });
});
