import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CertificateAuthority } from '../../control-plane/security/certificate-authority';
import { DEFAULT_TRUST_DOMAIN } from '../../src/security/spiffe-id';
import { AppClient } from '../helpers/app-client';
import { EtcdServer, haveEtcd } from '../helpers/etcd-server';
import { cli, createToken, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';

/** Starts one mesh process; the one place to adapt when the processes' flags change. */
function startProcess(name: string, args: string[]): MeshProcess {
  return MeshProcess.start(name, args);
}

interface SidecarDump {
  controlPlaneInUse: string;
  controlPlaneConnected: boolean;
  versions: Record<string, string>;
}

/**
 * Two control-plane replicas on one etcd serve one mesh: a change applied through one reaches a
 * sidecar connected to the other; when the sidecar's replica dies, it moves to the other and
 * resumes with what it holds — nothing is sent or applied again — and keeps serving.
 */
describe('e2e: two control-plane replicas on one etcd', function () {
  this.timeout(120_000);
  let etcd: EtcdServer;
  let dir: string;
  let ports: Record<'a' | 'aAdmin' | 'b' | 'bAdmin' | 'agent' | 'agentAdmin' | 'sidecarAdmin' | 'modem' | 'modem2', number>;
  let replicaB: MeshProcess;
  let sidecar: MeshProcess;
  const running: MeshProcess[] = [];

  const a = (): string => `127.0.0.1:${ports.a}`;
  const b = (): string => `127.0.0.1:${ports.b}`;
  const dump = async <T>(port: number): Promise<T> => JSON.parse((await httpGet(`http://127.0.0.1:${port}/config_dump`)).body) as T;
  const applied = (): number => sidecar.output().split('\n').filter((l) => l.includes('configuration applied')).length;
  const apply = (name: string, port: number, through: string): void => {
    const file = path.join(dir, `${name}.yaml`);
    fs.writeFileSync(file, `kind: Binding\nname: ${name}\nworkload: app1\ndevice: { host: gw1, path: "sim:modem0" }\nvirtual: { name: ${name}, listen: 127.0.0.1:${port} }\npolicy: { sharing: shared, requestTerminator: "\\r", response: { terminator: "OK\\r\\n" } }\n`);
    const r = cli(['apply', '-f', file, '--control-plane', through]);
    assert.equal(r.code, 0, r.stderr);
  };
  const at = async (port: number): Promise<void> => {
    const app = await waitFor(`a virtual modem on ${port}`, () => AppClient.connect(port).catch(() => undefined), 30_000);
    try {
      app.socket.write('AT\r');
      assert.equal((await app.take(9)).toString('latin1'), 'AT\r\r\nOK\r\n');
    } finally {
      app.close();
    }
  };

  before(async function () {
    if (!haveEtcd()) {
      console.log('    skipped: etcd is not installed (scripts/install-test-deps.sh installs etcd-server)');
      this.skip();
    }
    etcd = await EtcdServer.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-replicas-'));
    const names = ['a', 'aAdmin', 'b', 'bAdmin', 'agent', 'agentAdmin', 'sidecarAdmin', 'modem', 'modem2'] as const;
    ports = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await freePort()]))) as typeof ports;
    // Replicas of one mesh share one CA (on Kubernetes, --ca-cert/--ca-key from a Secret): a member's
    // certificate from one replica is then valid at the other, and the member can fail over.
    const ca = await CertificateAuthority.create(DEFAULT_TRUST_DOMAIN);
    const [caCert, caKey] = [path.join(dir, 'ca.crt'), path.join(dir, 'ca.key')];
    fs.writeFileSync(caCert, ca.certPem);
    fs.writeFileSync(caKey, ca.keyPem, { mode: 0o600 });
    const replica = (name: string, grpc: number, admin: number): MeshProcess =>
      startProcess(name, [
        'control-plane', '--listen', `127.0.0.1:${grpc}`, '--admin', `127.0.0.1:${admin}`, '--data-dir', path.join(dir, name), '--etcd-endpoints', etcd.endpoint,
        '--ca-cert', caCert, '--ca-key', caKey,
      ]);
    running.push(replica('replica-a', ports.a, ports.aAdmin));
    replicaB = replica('replica-b', ports.b, ports.bAdmin);
    running.push(replicaB);
    for (const admin of [ports.aAdmin, ports.bAdmin]) {
      await waitFor('a replica to be ready', async () => (await httpGet(`http://127.0.0.1:${admin}/ready`)).status === 200, 30_000);
    }
    // Join tokens live in the data directory of the replica that made them: the members join B, the
    // first replica they try, with tokens made through B.
    const [agentToken, sidecarToken] = [path.join(dir, 'gw1.token'), path.join(dir, 'app1.token')];
    fs.writeFileSync(agentToken, await createToken(b(), 'host', 'gw1'));
    fs.writeFileSync(sidecarToken, await createToken(b(), 'workload', 'app1'));
    running.push(
      startProcess('replicas-agent', [
        'agent', '--host-id', 'gw1', '--control-plane', `${b()},${a()}`, '--listen', `127.0.0.1:${ports.agent}`, '--admin', `127.0.0.1:${ports.agentAdmin}`, '--simulate', 'modem',
        '--token-file', agentToken,
      ]),
    );
    // The agent and the sidecar know both replicas and start on B.
    sidecar = startProcess('replicas-sidecar', [
      'sidecar', '--workload-id', 'app1', '--control-plane', `${b()},${a()}`, '--admin', `127.0.0.1:${ports.sidecarAdmin}`, '--token-file', sidecarToken,
    ]);
    running.push(sidecar);
  });

  after(async () => {
    await Promise.all(running.map((p) => p.stop()));
    await etcd?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a binding applied through replica A reaches the sidecar connected to replica B', async () => {
    await waitFor('the agent\'s modem in the register', () => /gw1\/sim:modem0/.test(cli(['get', 'endpoints', '--control-plane', b()]).stdout), 30_000);
    apply('modem', ports.modem, a());
    await at(ports.modem);
    const state = await dump<SidecarDump>(ports.sidecarAdmin);
    assert.equal(state.controlPlaneInUse, b());
    assert.equal(state.controlPlaneConnected, true);
    const [va, vb] = [(await dump<{ version: string }>(ports.aAdmin)).version, (await dump<{ version: string }>(ports.bAdmin)).version];
    assert.equal(va, vb, 'the replicas are at one version');
  });

  it('when replica B dies, the sidecar and the agent fail over to A, nothing is applied again, and the mesh keeps serving', async () => {
    const before = applied();
    const versionBefore = Number((await dump<{ version: string }>(ports.aAdmin)).version);
    const held = await AppClient.connect(ports.modem);
    try {
      await replicaB.stop('SIGKILL');
      const state = await waitFor('the sidecar to be connected to replica A', async () => {
        const d = await dump<SidecarDump>(ports.sidecarAdmin);
        return d.controlPlaneInUse === a() && d.controlPlaneConnected ? d : undefined;
      }, 30_000);
      // Replica A sees the sidecar at the version it holds: in sync without a resend.
      await waitFor('replica A to list the sidecar and the agent as synced', () => {
        const proxies = cli(['get', 'proxies', '--control-plane', a()]).stdout;
        return /sidecar\/app1\s+\S+\s+\d+\s+\d+\s+SYNCED/.test(proxies) && /agent\/gw1\s+\S+\s+\d+\s+\d+\s+SYNCED/.test(proxies);
      }, 30_000);
      assert.equal(applied(), before, 'the sidecar applied a configuration again after failing over');
      assert.ok(Object.keys(state.versions).length > 0);
      // The app's connection lived through it, and new ones work.
      held.socket.write('AT\r');
      assert.equal((await held.take(9)).toString('latin1'), 'AT\r\r\nOK\r\n');
      await at(ports.modem);
    } finally {
      held.close();
    }
    // Configuration keeps flowing through A to both, at later versions.
    apply('modem2', ports.modem2, a());
    await at(ports.modem2);
    assert.ok(applied() > before);
    assert.ok(Number((await dump<{ version: string }>(ports.aAdmin)).version) > versionBefore);
  });
});
