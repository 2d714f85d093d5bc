import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { applyPatch, type Operation } from 'fast-json-patch';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import { cli, REPO_ROOT } from '../../helpers/processes';
import { removeDir, silentLog, tempDir } from '../../unit/control-plane/fixtures';

function post(address: string, ca: Buffer, pathname: string, body: string, method = 'POST'): Promise<{ status: number; body: string }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port, path: pathname, method, ca, servername: 'localhost', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The webhook as the API server calls it: HTTPS, verified against the serving certificate. */
describe('control plane: the injection webhook over HTTPS', function () {
  this.timeout(30_000);
  let dir: string;
  let cp: RunningControlPlane;
  let cert: Buffer;

  before(async function () {
    dir = await tempDir();
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'tls.key'), '-out', path.join(dir, 'tls.crt'),
      ], { stdio: 'ignore' });
    } catch {
      console.log('      skipped: openssl is not installed (needed to make the webhook\'s certificate)');
      this.skip();
    }
    cert = fs.readFileSync(path.join(dir, 'tls.crt'));
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      dataDir: path.join(dir, 'data'),
      log: silentLog,
      webhook: {
        listen: '127.0.0.1:0',
        cert,
        key: fs.readFileSync(path.join(dir, 'tls.key')),
        injection: { image: 'devicemesh:test', controlPlane: 'cp.example:15010', caConfigMap: 'mesh-ca' },
      },
    });
  });

  after(async () => {
    await cp?.close();
    await removeDir(dir);
  });

  it('injects into an annotated pod, and the returned patch applies', async () => {
    const review = fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'admission', 'pod-annotated.json'), 'utf8');
    const res = await post(cp.webhookAddress as string, cert, '/inject', review);
    assert.equal(res.status, 200);
    const answer = JSON.parse(res.body);
    assert.equal(answer.response.allowed, true);
    const ops = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as Operation[];
    const pod = applyPatch(JSON.parse(review).request.object, ops, true, false).newDocument;
    const sidecar = pod.spec.containers.find((c: { name: string }) => c.name === 'devicemesh-sidecar');
    assert.equal(sidecar.image, 'devicemesh:test');
    assert.deepEqual(sidecar.args.slice(0, 5), ['sidecar', '--workload-id', 'modem-reader', '--control-plane', 'cp.example:15010']);
    assert.deepEqual(pod.spec.volumes.at(-1), { name: 'devicemesh-ca', configMap: { name: 'mesh-ca' } });
  });

  it('answers a malformed body with a 400 review, and keeps serving', async () => {
    const res = await post(cp.webhookAddress as string, cert, '/inject', 'not json');
    assert.equal(res.status, 400);
    assert.match(JSON.parse(res.body).response.status.message, /the body is not JSON/);
    const wrongMethod = await post(cp.webhookAddress as string, cert, '/inject', '', 'GET');
    assert.equal(wrongMethod.status, 405);
    const elsewhere = await post(cp.webhookAddress as string, cert, '/other', '{}');
    assert.equal(elsewhere.status, 404);
    const again = await post(cp.webhookAddress as string, cert, '/inject', fs.readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'admission', 'pod-not-annotated.json'), 'utf8'));
    assert.equal(again.status, 200);
    assert.equal(JSON.parse(again.body).response.allowed, true);
  });

  it('the CLI refuses --webhook-listen without a certificate, or with an unreadable one, in one line', () => {
    const noCert = cli(['control-plane', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', path.join(dir, 'x'), '--webhook-listen', '127.0.0.1:0']);
    assert.equal(noCert.code, 2, noCert.stderr);
    assert.match(noCert.stderr, /^devicemesh: flag --webhook-listen needs --webhook-cert and --webhook-key/);
    const missing = cli([
      'control-plane', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data-dir', path.join(dir, 'y'),
      '--webhook-listen', '127.0.0.1:0', '--webhook-cert', path.join(dir, 'none.crt'), '--webhook-key', path.join(dir, 'tls.key'),
    ]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /^devicemesh: flag --webhook-cert: cannot read .*none\.crt/);
    assert.equal(missing.stderr.trim().split('\n').length, 1);
  });
});
