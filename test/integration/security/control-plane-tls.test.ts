import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import { CertificateAuthority } from '../../../control-plane/security/certificate-authority';
import { ControlPlaneClient } from '../../../cli/control-plane-client';
import { serviceClient } from '../../../src/proto/load';
import { SPIFFE_CHANNEL_OPTIONS, spiffeServerCheck } from '../../../src/security/control-plane-identity';
import { CredentialManager } from '../../../src/security/credential-manager';
import { createCsr, generateKey } from '../../../src/security/x509';
import { AdsClient } from '../../../src/xds/ads-client';
import { MAPPING_TYPE_URL } from '../../../src/xds/type-urls';
import { binding, endpoint, removeDir, silentLog, tempDir } from '../../unit/control-plane/fixtures';
import { httpGet, waitFor } from '../../helpers/processes';

type Unary = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

/** Calls a method with raw credentials; resolves with the status code (OK = 0). */
function callWith(address: string, creds: grpc.ChannelCredentials, service: string, method: string, req: object, bearer?: string): Promise<grpc.status> {
  const Ctor = serviceClient(`devicemesh.v1.${service}`);
  const client = new Ctor(address, creds, SPIFFE_CHANNEL_OPTIONS);
  const md = new grpc.Metadata();
  if (bearer) md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) => {
    ((client as unknown as Record<string, Unary>)[method] as Unary).call(client, req, md, { deadline: Date.now() + 5000 }, (err) => {
      client.close();
      resolve(err ? err.code : grpc.status.OK);
    });
  });
}

describe('control plane over mTLS: join, renew, per-RPC authorization', function () {
  this.timeout(60_000);
  let dir: string;
  let cp: RunningControlPlane;
  let operatorToken: string;
  const managers: CredentialManager[] = [];
  const clients: AdsClient[] = [];

  const join = async (kind: 'host' | 'workload', id: string, token?: string): Promise<CredentialManager> => {
    const security = cp.security;
    assert.ok(security);
    const m = new CredentialManager({ controlPlane: cp.grpcAddress, identity: { kind, id }, token: () => token ?? security.createToken(kind, id), log: silentLog });
    managers.push(m);
    await m.start();
    return m;
  };

  const sslWith = (ca: string, key?: string, cert?: string): grpc.ChannelCredentials =>
    grpc.credentials.createSsl(Buffer.from(ca), key ? Buffer.from(key) : null, cert ? Buffer.from(cert) : null, {
      checkServerIdentity: spiffeServerCheck({ kind: 'control-plane' }),
    });

  /** auth_refused for one reason, from the admin interface. */
  const refusals = async (reason: string): Promise<number> => {
    const body = (await httpGet(`http://${cp.adminAddress}/stats`)).body;
    return Number(new RegExp(`^auth_refused\\{reason=${reason}\\}: (\\d+)$`, 'm').exec(body)?.[1] ?? 0);
  };

  before(async () => {
    dir = await tempDir();
    cp = await startControlPlane({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', dataDir: dir, log: silentLog, certTtlMs: 4000 });
    operatorToken = fs.readFileSync(cp.security?.operatorTokenFile as string, 'utf8').trim();
  });

  after(async () => {
    for (const c of clients) c.stop();
    for (const m of managers) m.close();
    await cp?.close();
    await removeDir(dir);
  });

  it('writes its CA (key 0600) and the operator credential (0600) in the data directory', () => {
    assert.equal(fs.statSync(path.join(dir, 'ca', 'ca.key')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, 'operator.token')).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(path.join(dir, 'operator.sha256'), 'utf8').includes(operatorToken));
  });

  it('joins with a good token: a certificate naming the token\'s identity, chained to the CA', async () => {
    const m = await join('host', 'gw1');
    const material = m.current();
    assert.deepEqual(material.identity, { trustDomain: 'devicemesh.local', kind: 'host', id: 'gw1' });
    const leaf = new X509Certificate(material.cert);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://devicemesh.local/host/gw1');
    assert.ok(leaf.verify(new X509Certificate(material.ca).publicKey));
  });

  it('refuses a wrong token, an expired token, and a token for another identity', async () => {
    const security = cp.security;
    assert.ok(security);
    const good = security.createToken('host', 'gw2');
    const wrong = good.slice(0, -1) + (good.endsWith('a') ? 'b' : 'a');
    const refuse = (token: string, id = 'gw2'): Promise<void> => {
      const m = new CredentialManager({ controlPlane: cp.grpcAddress, identity: { kind: 'host', id }, token: () => token, log: silentLog });
      managers.push(m);
      return m.start();
    };
    await assert.rejects(refuse(wrong), /refused the join: token \w+: wrong secret/);
    const expired = security.createToken('host', 'gw2', 1);
    await new Promise((r) => setTimeout(r, 20));
    await assert.rejects(refuse(expired), /expired/);
    // The token is for gw2; a process that calls itself gw3 does not accept gw2's certificate.
    await assert.rejects(refuse(good, 'gw3'), /issued spiffe:\/\/devicemesh.local\/host\/gw2, but this process is/);
    assert.equal(await refusals('bad_token'), 2, 'the wrong and the expired token');
  });

  it('does not send a token to a control plane whose chain lacks the pinned CA', async () => {
    const good = cp.security?.createToken('host', 'gw2') as string;
    const other = await CertificateAuthority.fromPem(...(Object.values(await CertificateAuthority.create('devicemesh.local')) as [string, string]), 'devicemesh.local');
    const pinnedElsewhere = good.replace(/^DMT1-[0-9a-f]{64}-/, `DMT1-${other.digest()}-`);
    const m = new CredentialManager({ controlPlane: cp.grpcAddress, identity: { kind: 'host', id: 'gw2' }, token: () => pinnedElsewhere, log: silentLog });
    managers.push(m);
    await assert.rejects(m.start(), /does not present the CA the token pins/);
  });

  it('refuses a plaintext client on the TLS port', async () => {
    const code = await callWith(cp.grpcAddress, grpc.credentials.createInsecure(), 'Bindings', 'List', {});
    assert.equal(code, grpc.status.UNAVAILABLE);
  });

  it('needs the operator credential to apply: UNAUTHENTICATED without, PERMISSION_DENIED when wrong, OK with it', async () => {
    const ca = cp.security?.caPem as string;
    const request = { bindings: [binding('op-test')], policies: [] };
    assert.equal(await callWith(cp.grpcAddress, sslWith(ca), 'Bindings', 'Apply', request), grpc.status.UNAUTHENTICATED);
    assert.equal(await callWith(cp.grpcAddress, sslWith(ca), 'Bindings', 'Apply', request, 'dmop-not-it'), grpc.status.PERMISSION_DENIED);
    // A mesh member's certificate is not the operator.
    const m = await join('workload', 'app1');
    const member = sslWith(m.current().ca, m.current().key, m.current().cert);
    assert.equal(await callWith(cp.grpcAddress, member, 'Bindings', 'Apply', request), grpc.status.UNAUTHENTICATED);
    const client = new ControlPlaneClient(cp.grpcAddress, 5000, { caPem: ca, operatorToken });
    try {
      await client.call('Bindings', 'Apply', request);
    } finally {
      client.close();
    }
    // Reads are open from loopback without any credential.
    assert.equal(await callWith(cp.grpcAddress, sslWith(ca), 'Bindings', 'List', {}), grpc.status.OK);
    assert.equal(await refusals('no_operator_credential'), 2);
    assert.equal(await refusals('bad_operator_credential'), 1);
  });

  it('revocation: a revoked member\'s renewal is refused, watchers get its serial, a malformed identity is refused', async () => {
    const ca = cp.security?.caPem as string;
    const m = await join('workload', 'revoked-app');
    const member = sslWith(m.current().ca, m.current().key, m.current().cert);
    const serial = new X509Certificate(m.current().cert).serialNumber.toUpperCase();
    const renew = async (): Promise<grpc.status> => callWith(cp.grpcAddress, member, 'Identity', 'Renew', { csrPem: await createCsr(await generateKey()) });
    assert.equal(await renew(), grpc.status.OK);
    // Another member watches the revocation list, as agents do.
    const watcher = await join('host', 'watching-gw');
    const Ctor = serviceClient('devicemesh.v1.Identity');
    const watchClient = new Ctor(cp.grpcAddress, sslWith(watcher.current().ca, watcher.current().key, watcher.current().cert), SPIFFE_CHANNEL_OPTIONS);
    const lists: string[][] = [];
    const stream = (watchClient as unknown as { watchRevocations(r: object): grpc.ClientReadableStream<{ serials: string[] }> }).watchRevocations({});
    stream.on('data', (l: { serials: string[] }) => lists.push(l.serials));
    stream.on('error', () => undefined);
    try {
      await waitFor('the first revocation list', () => lists.length > 0, 5000);
      assert.ok(!(lists[0] as string[]).includes(serial));
      const client = new ControlPlaneClient(cp.grpcAddress, 5000, { caPem: ca, operatorToken });
      try {
        const res = await client.call<{ spiffeId: string; certificates: number }>('Identity', 'RevokeIdentity', { identity: 'workload/revoked-app' });
        assert.equal(res.spiffeId, 'spiffe://devicemesh.local/workload/revoked-app');
        // The join's certificate and the one its renewal got.
        assert.equal(res.certificates, 2);
        await assert.rejects(client.call('Identity', 'RevokeIdentity', { identity: 'revoked-app' }), /neither host\/<id> nor workload\/<id>/);
        await assert.rejects(client.call('Identity', 'RevokeIdentity', { identity: 'workload/never-joined' }), /no certificate that is valid/);
      } finally {
        client.close();
      }
      await waitFor('the revoked serial pushed to the watcher', () => lists.some((l) => l.includes(serial)), 5000);
      const before = await refusals('revoked_certificate');
      assert.equal(await renew(), grpc.status.UNAUTHENTICATED);
      assert.equal(await callWith(cp.grpcAddress, member, 'Bindings', 'List', {}), grpc.status.OK, 'loopback reads need no certificate');
      assert.equal(await refusals('revoked_certificate'), before + 1);
    } finally {
      stream.cancel();
      watchClient.close();
    }
  });

  it('refuses a certificate from another CA and an expired certificate', async () => {
    const ca = cp.security?.caPem as string;
    const other = await CertificateAuthority.fromPem(...(Object.values(await CertificateAuthority.create('devicemesh.local')) as [string, string]), 'devicemesh.local');
    const key = await generateKey();
    const csr = await createCsr(key);
    const foreign = await other.issue(csr, { trustDomain: 'devicemesh.local', kind: 'host', id: 'gw1' }, 60_000);
    const renew = { csrPem: csr };
    assert.equal(await callWith(cp.grpcAddress, sslWith(ca, key.keyPem, foreign.certChainPem), 'Identity', 'Renew', renew), grpc.status.UNAUTHENTICATED);
    // Our own CA, an hour ago: expired.
    const ours = await CertificateAuthority.fromPem(
      fs.readFileSync(path.join(dir, 'ca', 'ca.crt'), 'utf8'),
      fs.readFileSync(path.join(dir, 'ca', 'ca.key'), 'utf8'),
      'devicemesh.local',
      () => Date.now() - 3600_000,
    );
    const expired = await ours.issue(csr, { trustDomain: 'devicemesh.local', kind: 'host', id: 'gw1' }, 60_000);
    assert.equal(await callWith(cp.grpcAddress, sslWith(ca, key.keyPem, expired.certChainPem), 'Identity', 'Renew', renew), grpc.status.UNAUTHENTICATED);
    // The same key with a valid certificate of ours is accepted.
    const valid = await ours.issue(csr, { trustDomain: 'devicemesh.local', kind: 'host', id: 'gw1' }, 7200_000);
    assert.equal(await callWith(cp.grpcAddress, sslWith(ca, key.keyPem, valid.certChainPem), 'Identity', 'Renew', renew), grpc.status.OK);
    assert.equal(await refusals('no_client_certificate'), 2, 'the foreign and the expired certificate');
  });

  it('refuses a discovery stream whose node.id is not the certificate\'s (PERMISSION_DENIED)', async () => {
    const m = await join('workload', 'app7');
    const ads = new AdsClient({
      address: cp.grpcAddress,
      credentials: m.channelCredentials(),
      identity: { id: 'app8', kind: 'sidecar' },
      handlers: { [MAPPING_TYPE_URL]: () => undefined },
      log: silentLog,
    });
    clients.push(ads);
    const reason = new Promise<string>((resolve) => ads.once('disconnected', resolve));
    ads.start();
    assert.match(await reason, /may not subscribe as sidecar "app8"/);
    ads.stop();
    assert.equal(await refusals('wrong_identity'), 1);
  });

  it('rotation: the member renews before expiry, its discovery stream stays up and config still flows', async function () {
    this.timeout(30_000);
    const m = await join('workload', 'app1');
    const first = m.current();
    // An agent on the stream, with a device, so that a binding makes a mapping for app1.
    const host = await join('host', 'gw5');
    const agent = new AdsClient({
      address: cp.grpcAddress,
      credentials: host.channelCredentials(),
      identity: { id: 'gw5', kind: 'agent', metadata: { socketPlane: '127.0.0.1:1' } },
      handlers: { [MAPPING_TYPE_URL]: () => undefined },
      log: silentLog,
    });
    clients.push(agent);
    const agentUp = new Promise((resolve) => agent.once('connected', resolve));
    agent.start();
    await agentUp;
    const client = new ControlPlaneClient(cp.grpcAddress, 5000, { caPem: cp.security?.caPem as string, operatorToken });
    await client.call('Registry', 'RegisterEndpoint', { endpoint: endpoint('gw5', '/dev/ttyS5') });
    let mappings = 0;
    let versions = 0;
    const ads = new AdsClient({
      address: cp.grpcAddress,
      credentials: m.channelCredentials(),
      identity: { id: 'app1', kind: 'sidecar' },
      handlers: {
        [MAPPING_TYPE_URL]: (resources) => {
          versions += 1;
          mappings = resources.length;
        },
      },
      log: silentLog,
    });
    clients.push(ads);
    let connects = 0;
    let disconnects = 0;
    ads.on('connected', () => (connects += 1));
    ads.on('disconnected', () => (disconnects += 1));
    ads.start();
    await waitFor('the first configuration', () => versions > 0);
    // certTtl 4 s: renewed at about 2/3, twice within 7 s.
    let rotations = 0;
    m.onRotate(() => (rotations += 1));
    await waitFor('two renewals', () => rotations >= 2, 10_000);
    assert.notEqual(m.current().cert, first.cert);
    assert.ok(new Date(first.notAfter).getTime() < Date.now(), 'the first certificate has expired by now');
    try {
      await client.call('Bindings', 'Apply', { bindings: [binding('after-rotation', { device: { host: 'gw5', path: '/dev/ttyS5', id: '' } })], policies: [] });
    } finally {
      client.close();
    }
    await waitFor('the mapping pushed after rotation', () => mappings === 1);
    assert.equal(connects, 1, 'one discovery stream throughout');
    assert.equal(disconnects, 0);
    // New connections use the new certificate: a Renew over a fresh channel succeeds.
    const fresh = sslWith(m.current().ca, m.current().key, m.current().cert);
    assert.equal(await callWith(cp.grpcAddress, fresh, 'Identity', 'Renew', { csrPem: await createCsr(await generateKey()) }), grpc.status.OK);
  });
});
