import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppClient } from '../helpers/app-client';
import { cli, createToken, freePort, MeshProcess, waitFor } from '../helpers/processes';

const DEVICE = 'sim:modem0';

interface Status {
  binding: { name: string };
  phase: string;
  message: string;
}

/**
 * Roaming bindings over the real processes: two gateways (two agents on two loopback addresses,
 * 127.0.0.1 and 127.0.0.2, on this one machine: no network namespaces needed) whose simulated modem
 * has the same stable id, and a binding that names the id without a host.
 */
describe('e2e: a roaming binding follows its device between gateways', function () {
  this.timeout(180_000);

  let tmp: string;
  let cp: string;
  let cpAdmin: string;
  let controlPlane: MeshProcess;
  let sidecar: MeshProcess;
  const agents = new Map<string, MeshProcess>();
  let port: number;

  const startAgent = async (host: string, ip: string): Promise<MeshProcess> => {
    // The token made first (with the helper's patient retries): on a loaded machine the background provisioning can lag.
    const token = await createToken(cp, 'host', host, 90_000);
    const agent = MeshProcess.start(`e2e-roaming-agent-${host}`, [
      'agent', '--host-id', host, '--control-plane', cp, '--listen', `${ip}:${await freePort()}`, '--simulate', 'modem', '--admin', `127.0.0.1:${await freePort()}`, '--token', token,
    ]);
    agents.set(host, agent);
    return agent;
  };
  const status = (): Status => {
    const r = cli(['get', 'bindings', '-o', 'json', '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { bindings: Status[] }).bindings.find((b) => b.binding.name === 'follow') as Status;
  };
  const mappedTo = (host: string): Promise<Status> => waitFor(`the binding to map to ${host}`, () => {
    const s = status();
    return s.phase === 'BINDING_PHASE_MAPPED' && s.message.startsWith(`mapped to ${host}/${DEVICE}`) ? s : undefined;
  }, 60_000);
  /** An app's ATI, answered by whichever gateway has the modem now (the sidecar may still be opening the listener). */
  const answersAt = (): Promise<string> =>
    waitFor('the modem to answer ATI', async () => {
      const app = await AppClient.connect(port).catch(() => undefined);
      if (!app) return undefined;
      try {
        app.socket.write('ATI\r');
        const reply = await app.take(4, 5000).catch(() => undefined);
        if (!reply) return undefined;
        await new Promise((r) => setTimeout(r, 200));
        const rest = app.received > 0 ? await app.take(app.received) : Buffer.alloc(0);
        return Buffer.concat([reply, rest]).toString('latin1');
      } finally {
        app.close();
      }
    }, 30_000);

  before(async () => {
    console.log('      two gateways as two agents on loopback addresses 127.0.0.1 and 127.0.0.2 (no network namespaces)');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-roaming-'));
    cp = `127.0.0.1:${await freePort()}`;
    cpAdmin = `127.0.0.1:${await freePort()}`;
    port = await freePort();
    controlPlane = MeshProcess.start('e2e-roaming-control-plane', ['control-plane', '--listen', cp, '--admin', cpAdmin, '--data-dir', path.join(tmp, 'data')]);
    sidecar = MeshProcess.start('e2e-roaming-sidecar', ['sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${await freePort()}`]);
    const file = path.join(tmp, 'binding.yaml');
    fs.writeFileSync(file, `kind: Binding\nname: follow\nworkload: app1\ndevice: { id: "${DEVICE}" }\nvirtual: { name: modem, protocol: raw, listen: 127.0.0.1:${port} }\n`);
    await waitFor('the control plane to take the binding', () => cli(['apply', '-f', file, '--control-plane', cp]).code === 0, 60_000);
  });

  after(async () => {
    await Promise.all([sidecar?.stop(), ...[...agents.values()].map((a) => a.stop()), controlPlane?.stop()]);
  });

  it('maps to gateway A, then to gateway B once the device is gone from A and B reports it; describe binding shows the move', async () => {
    assert.equal(status().phase, 'BINDING_PHASE_PENDING');
    await startAgent('gwa', '127.0.0.1');
    const onA = await mappedTo('gwa');
    assert.match(onA.message, /via 127\.0\.0\.1:/);
    assert.match(await answersAt(), /OK/);
    // Gateway A is replaced: its agent stops (reporting its devices gone), B comes up with the device.
    await agents.get('gwa')!.stop();
    await waitFor('the binding to leave gwa', () => status().phase === 'BINDING_PHASE_PENDING' || undefined, 30_000);
    await startAgent('gwb', '127.0.0.2');
    const onB = await mappedTo('gwb');
    assert.match(onB.message, /via 127\.0\.0\.2:/);
    assert.match(await answersAt(), /OK/, 'the next request is answered by the device on B');
    const described = cli(['describe', 'binding', 'follow', '--control-plane', cp, '--admin', cpAdmin]);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, new RegExp(`mapped to gwb/${DEVICE} via 127\\.0\\.0\\.2`));
    console.log(`      describe binding after the move: ${described.stdout.split('\n').find((l) => l.startsWith('Message'))?.trim()}`);
  });

  it('reports the device on both gateways at once as a conflict, and keeps traffic on the first', async () => {
    await startAgent('gwc', '127.0.0.3');
    const conflict = await waitFor('the conflict in the binding status', () => {
      const s = status();
      return /conflict/.test(s.message) ? s : undefined;
    }, 60_000);
    assert.match(conflict.message, new RegExp(`^mapped to gwb/${DEVICE} via 127\\.0\\.0\\.2:\\d+; conflict: device ${DEVICE} is reported by gwb, gwc at once, traffic stays on gwb$`));
    const mappings = JSON.parse(cli(['get', 'mappings', '-o', 'json', '--control-plane', cp]).stdout) as { mappings: Array<{ binding: string; hostId: string }> };
    assert.deepEqual(mappings.mappings.filter((m) => m.binding === 'follow').map((m) => m.hostId), ['gwb'], 'one mapping, on the first gateway');
    const endpoints = cli(['get', 'endpoints', '--control-plane', cp]);
    assert.equal(endpoints.code, 0, endpoints.stderr);
    const rows = endpoints.stdout.split('\n').filter((l) => l.includes(DEVICE));
    assert.equal(rows.filter((l) => l.includes(`CONFLICT: ${DEVICE} on gwb, gwc`)).length, 2, endpoints.stdout);
    console.log(`      get endpoints:\n${rows.map((r) => `        ${r}`).join('\n')}`);
    assert.match(await answersAt(), /OK/);
  });
});
