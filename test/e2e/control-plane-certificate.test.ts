import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { CertificateAuthority } from '../../control-plane/security/certificate-authority';
import type { SpiffeId } from '../../src/security/spiffe-id';
import { generateKey } from '../../src/security/x509';
import { cli, cliAsync, freePort, MeshProcess, waitFor } from '../helpers/processes';
import { PYTHON, STRICT_CLIENT, strictClientMissing } from '../helpers/strict-reflection';

const SERVICES = ['devicemesh.v1.Bindings', 'devicemesh.v1.Identity', 'devicemesh.v1.Registry', 'devicemesh.v1.Status', 'envoy.service.discovery.v3.AggregatedDiscoveryService'];

function python(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(PYTHON, [STRICT_CLIENT, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A TLS server (ALPN h2) presenting `identity`'s certificate from `ca`: what sits on an address instead of the control plane. */
async function impostor(ca: CertificateAuthority, identity: SpiffeId): Promise<{ server: tls.Server; port: number; handshakes: () => number }> {
  const key = await generateKey();
  const issued = await ca.certify(key.keys.publicKey, identity, 3600_000, { dns: ['localhost'], ips: ['127.0.0.1'] });
  let handshakes = 0;
  const server = tls.createServer({ cert: ca.servingChain(issued), key: key.keyPem, ALPNProtocols: ['h2'] }, (socket) => {
    handshakes += 1;
    socket.destroy();
  });
  server.on('tlsClientError', () => undefined);
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port, handshakes: () => handshakes };
}

/**
 * Issue 15, finding 4: the control plane's serving certificate is verifiable the ordinary way
 * (by host name or IP address against <data-dir>/ca/bundle.crt), by Python grpcio, OpenSSL and
 * Node's default check; and the CLI, given a server whose certificate it does not trust, says so.
 */
describe('e2e: a control-plane certificate verifiable by host name and IP', function () {
  this.timeout(120_000);
  let tmp: string;
  let dataDir: string;
  let bundle: string;
  let port: number;
  let controlPlane: MeshProcess;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-cpcert-'));
    dataDir = path.join(tmp, 'cp');
    bundle = path.join(dataDir, 'ca', 'bundle.crt');
    port = await freePort();
    controlPlane = MeshProcess.start('e2e-cpcert-control-plane', [
      'control-plane', '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', dataDir,
      '--san', 'cp.example.test', '--san', '10.9.8.7',
    ]);
    await waitFor('the control plane', () => cli(['get', 'endpoints', '--control-plane', `127.0.0.1:${port}`]).code === 0, 30_000);
  });

  after(async () => {
    await controlPlane?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('Python grpcio, verifying with bundle.crt', () => {
    before(function () {
      const missing = strictClientMissing();
      if (missing) {
        console.log(`    skipped: ${missing} (scripts/install-test-deps.sh installs them)`);
        this.skip();
      }
    });

    for (const host of ['127.0.0.1', 'localhost']) {
      it(`lists the services by reflection on ${host}, and describes each with its dependencies resolved`, () => {
        const listed = python('--cacert', bundle, `${host}:${port}`, 'list');
        assert.equal(listed.code, 0, listed.stderr);
        for (const s of SERVICES) assert.ok(listed.stdout.split('\n').includes(s), `${s} not listed:\n${listed.stdout}`);
        for (const s of SERVICES) {
          const described = python('--cacert', bundle, `${host}:${port}`, 'describe', s);
          assert.equal(described.code, 0, described.stderr);
          assert.equal((JSON.parse(described.stdout) as { service: string }).service, s);
        }
      });
    }

    it('refuses the control plane with another mesh\'s bundle', async () => {
      const other = path.join(tmp, 'other-ca.crt');
      fs.writeFileSync(other, (await CertificateAuthority.create('devicemesh.local')).certPem);
      const r = python('--cacert', other, `127.0.0.1:${port}`, 'list');
      assert.notEqual(r.code, 0, r.stdout);
    });
  });

  it('passes Node\'s default host-name check for 127.0.0.1, localhost and the --san names', async () => {
    const ca = fs.readFileSync(bundle);
    const check = (host: string, servername: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host, port, ca, ALPNProtocols: ['h2'], ...(servername ? { servername } : {}) }, () => {
          const san = s.getPeerCertificate().subjectaltname ?? '';
          s.destroy();
          resolve(san);
        });
        s.once('error', reject);
      });
    // Node checks an IP host against the IP SANs, a name against the DNS SANs.
    await check('127.0.0.1', '');
    await check('localhost', 'localhost');
    const san = await check('127.0.0.1', 'cp.example.test');
    assert.match(san, /URI:spiffe:\/\/devicemesh\.local\/control-plane/);
    assert.match(san, /IP Address:10\.9\.8\.7/);
    assert.match(san, new RegExp(`DNS:${os.hostname().toLowerCase().replace(/\./g, '\\.')}`));
  });

  it('passes openssl s_client -verify_ip 127.0.0.1 and -verify_hostname localhost', function () {
    if (spawnSync('openssl', ['version']).status !== 0) {
      console.log('    skipped: openssl is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
    for (const verify of [['-verify_ip', '127.0.0.1'], ['-verify_hostname', 'localhost']]) {
      const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', bundle, '-alpn', 'h2', ...verify, '-verify_return_error'], {
        input: '',
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Verify return code: 0 \(ok\)/);
    }
  });

  it('refuses an invalid --san with one line naming the flag', () => {
    const r = cli(['control-plane', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', path.join(tmp, 'bad'), '--san', 'not a name']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--san: "not a name" is neither an IP address nor a DNS name/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  it('names the certificate, not an unreachable server, when another CA\'s server sits on the address', async () => {
    const foreign = await CertificateAuthority.fromPem(
      ...(Object.values(await CertificateAuthority.create('devicemesh.local')) as [string, string]),
      'devicemesh.local',
    );
    const fake = await impostor(foreign, { trustDomain: 'devicemesh.local', kind: 'control-plane', id: '' });
    try {
      const started = Date.now();
      // Run asynchronously: the impostor answers from this process.
      const r = await cliAsync(['get', 'endpoints', '--control-plane', `127.0.0.1:${fake.port}`, '--ca-file', bundle, '--operator-token-file', path.join(dataDir, 'operator.token')]);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /presented a certificate that --ca-file does not verify \(SELF_SIGNED_CERT_IN_CHAIN/);
      assert.doesNotMatch(r.stderr, /unreachable|Deadline/);
      assert.ok(Date.now() - started < 15_000, 'the CLI did not wait for a deadline');
      assert.equal(fake.handshakes(), 0, 'no handshake completed, so no bearer token was sent');
    } finally {
      fake.server.close();
    }
  });

  it('names the identity when a certificate of this CA that is not the control plane\'s sits on the address', async () => {
    const ca = await CertificateAuthority.fromPem(
      fs.readFileSync(path.join(dataDir, 'ca', 'ca.crt'), 'utf8'),
      fs.readFileSync(path.join(dataDir, 'ca', 'ca.key'), 'utf8'),
      'devicemesh.local',
    );
    const fake = await impostor(ca, { trustDomain: 'devicemesh.local', kind: 'workload', id: 'app1' });
    try {
      const r = await cliAsync(['get', 'endpoints', '--control-plane', `127.0.0.1:${fake.port}`, '--ca-file', bundle]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /presented a certificate of another identity: server is spiffe:\/\/devicemesh\.local\/workload\/app1, expected control-plane/);
      assert.equal(fake.handshakes(), 0);
    } finally {
      fake.server.close();
    }
  });
});
