import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppClient } from '../helpers/app-client';
import { AT_POLICY, AtApp } from '../helpers/at-app';
import { AtResponder } from '../helpers/at-responder';
import { cli, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';
import { startOneGatewayMesh } from '../helpers/one-gateway-mesh';
import { haveSocat, PtyPair } from '../helpers/pty';
import { dropsAndCountsEveryByte, holdsTenKilobytesPerSecond } from '../helpers/rate-limit-cases';
import { SlowReader } from '../helpers/slow-reader';

interface Spec {
  name: string;
  workload: string;
  device: string;
  port: number;
  policy: string;
}

/**
 * One device, many apps: commands of several consumers through one queue (shared), turns by
 * weight (time-slice), and rate limits that slow a sender down or drop and count — all through
 * the real control plane, agent and sidecars, on socat ptys.
 */
describe('e2e: sharing a device and limiting its rate', function () {
  this.timeout(180_000);

  let tmp: string;
  let cp: string;
  let agentAdmin: number;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  const sidecars: MeshProcess[] = [];
  const ptys: PtyPair[] = [];
  let specs: Record<string, Spec>;

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: needs socat');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-sharing-'));
    cp = `127.0.0.1:${await freePort()}`;
    agentAdmin = await freePort();
    for (const name of ['At', 'Slice', 'Rate', 'Drop']) ptys.push(await PtyPair.create(path.join(tmp, `tty${name}`), path.join(tmp, `peer${name}`)));
    const [at, slice, rate, drop] = ptys.map((p) => p.device) as [string, string, string, string];
    const sliced = (weight: number): string => `sharing: time-slice, timeSliceMs: 40, weight: ${weight}, requestTerminator: "\\r", response: { terminator: "OK\\r\\n" }, perConsumerQueue: 4`;
    specs = {};
    for (const s of [
      { name: 'at-a', workload: 'app1', device: at, policy: AT_POLICY },
      { name: 'at-b', workload: 'app2', device: at, policy: AT_POLICY },
      { name: 'slice-1', workload: 'app1', device: slice, policy: sliced(1) },
      { name: 'slice-2', workload: 'app1', device: slice, policy: sliced(2) },
      { name: 'slice-3', workload: 'app1', device: slice, policy: sliced(1) },
      { name: 'rate', workload: 'app1', device: rate, policy: 'bytesPerSecond: 10000' },
      { name: 'drop', workload: 'app1', device: drop, policy: 'bytesPerSecond: 10000, overLimit: drop' },
    ]) {
      specs[s.name] = { ...s, port: await freePort() };
    }
    const mesh = await startOneGatewayMesh('e2e-sharing', tmp, cp, agentAdmin, ['app1', 'app2']);
    ({ controlPlane, agent } = mesh);
    sidecars.push(...mesh.sidecars);
    await waitFor('the agent to register the ptys', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as { endpoints: Array<{ state: string }> }).endpoints.filter((e) => e.state === 'ENDPOINT_STATE_PRESENT').length === ptys.length;
    }, 20_000);
    const file = path.join(tmp, 'bindings.yaml');
    fs.writeFileSync(
      file,
      Object.values(specs)
        .map((s) => `kind: Binding\nname: ${s.name}\nworkload: ${s.workload}\ndevice: { host: gw1, path: ${s.device} }\nvirtual: { name: ${s.name}, protocol: raw, listen: 127.0.0.1:${s.port} }\npolicy: { ${s.policy} }\n`)
        .join('---\n'),
    );
    const applied = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);
    for (const s of Object.values(specs)) {
      await waitFor(`${s.name} to listen`, () => AppClient.connect(s.port).then((c) => (c.close(), true), () => false), 15_000);
    }
  });

  after(async () => {
    await Promise.all([...sidecars.map((s) => s.stop()), agent?.stop(), controlPlane?.stop()]);
    for (const p of ptys) await p.remove();
  });

  const mappingId = (binding: string): string => {
    const r = cli(['get', 'mappings', '-o', 'json', '--control-plane', cp]);
    const found = (JSON.parse(r.stdout) as { mappings: Array<{ id: string; binding: string }> }).mappings.find((m) => m.binding === binding);
    assert.ok(found, `mapping of ${binding}`);
    return found.id;
  };
  const agentMetric = async (name: string, mapping: string): Promise<number> => {
    const body = (await httpGet(`http://127.0.0.1:${agentAdmin}/stats/prometheus`)).body;
    const line = body.split('\n').find((l) => l.startsWith(`devicemesh_${name}{`) && l.includes(`mapping="${mapping}"`));
    return Number(line?.split(' ').pop() ?? '0');
  };

  it('gives each of eight consumers in shared mode its own responses, whole and never interleaved', async () => {
    const responder = await AtResponder.open(ptys[0]!.peer, 1);
    const clients: AppClient[] = [];
    try {
      const apps: AtApp[] = [];
      for (let i = 0; i < 8; i++) {
        const client = await AppClient.connect(specs[i % 2 === 0 ? 'at-a' : 'at-b']!.port);
        clients.push(client);
        apps.push(new AtApp(client, `c${i}`, 2, 40));
      }
      await waitFor('every answer', () => apps.every((a) => a.answered === 40 || a.mismatch !== undefined), 60_000);
      for (const [i, a] of apps.entries()) assert.equal(a.mismatch, undefined, `consumer c${i}: ${a.mismatch}`);
      console.log(`      8 consumers × 40 commands: ${responder.answered} answered by the device, every response at its sender byte for byte`);
      assert.equal(responder.answered, 320);
    } finally {
      for (const c of clients) c.close();
      await responder.close();
    }
  });

  it('shares device time 1:2:1 among time-slice consumers weighted 1, 2 and 1 (within 10 % over 10 s)', async () => {
    const responder = await AtResponder.open(ptys[1]!.peer, 2);
    const clients: AppClient[] = [];
    try {
      const apps: AtApp[] = [];
      for (const [i, name] of ['slice-1', 'slice-2', 'slice-3'].entries()) {
        const client = await AppClient.connect(specs[name]!.port);
        clients.push(client);
        apps.push(new AtApp(client, `s${i}`, 4));
      }
      await new Promise((r) => setTimeout(r, 10_000));
      for (const a of apps) a.stop();
      const counts = apps.map((a) => a.answered);
      const total = counts.reduce((x, y) => x + y, 0);
      const shares = counts.map((c) => c / total);
      console.log(`      answers per consumer in 10 s: ${counts.join(' / ')} (shares ${shares.map((s) => (s * 100).toFixed(1) + ' %').join(' / ')}; each answer is the same device time)`);
      for (const a of apps) assert.equal(a.mismatch, undefined, a.mismatch);
      [0.25, 0.5, 0.25].forEach((want, i) => assert.ok(Math.abs((shares[i] as number) - want) <= want * 0.1, `consumer ${i} had ${(shares[i]! * 100).toFixed(1)} % of the device, want ${want * 100} % ± 10 %`));
    } finally {
      for (const c of clients) c.close();
      await responder.close();
    }
  });

  it('holds a binding limited to 10 kB/s to 10 kB/s ± 10 % over 10 s, slowing the app down', async () => {
    const reader = await SlowReader.open(ptys[2]!.peer, Number.MAX_SAFE_INTEGER, 0);
    const app = await AppClient.connect(specs.rate!.port);
    try {
      await holdsTenKilobytesPerSecond(app, reader, 10_000);
    } finally {
      app.close();
      await reader.close();
    }
  });

  it('drops what a drop-policy binding sends above its limit and counts every dropped byte', async () => {
    const reader = await SlowReader.open(ptys[3]!.peer, Number.MAX_SAFE_INTEGER, 0);
    const app = await AppClient.connect(specs.drop!.port);
    const mapping = mappingId('drop');
    try {
      await dropsAndCountsEveryByte(app, reader, () => agentMetric('rate_limit_dropped_bytes_total', mapping));
    } finally {
      app.close();
      await reader.close();
    }
  });
});
