import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import { serviceClient } from '../../../src/proto/load';
import { SPIFFE_CHANNEL_OPTIONS, spiffeServerCheck } from '../../../src/security/control-plane-identity';
import { CredentialManager } from '../../../src/security/credential-manager';
import { httpGet } from '../../helpers/processes';
import { removeDir, silentLog, tempDir } from '../../unit/control-plane/fixtures';

type Unary = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void;

/** Issue 15, low item: failed joins are slowed per source, over real gRPC. */
describe('control plane: failed joins slowed per source', function () {
  this.timeout(60_000);
  let dir: string;
  let cp: RunningControlPlane;

  before(async () => {
    dir = await tempDir();
    cp = await startControlPlane({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', dataDir: dir, log: silentLog });
  });
  after(async () => {
    await cp?.close();
    await removeDir(dir);
  });

  const throttled = async (outcome: string): Promise<number> => {
    const body = (await httpGet(`http://${cp.adminAddress}/stats`)).body;
    return Number(new RegExp(`^joins_throttled\\{outcome=${outcome}\\}: (\\d+)$`, 'm').exec(body)?.[1] ?? 0);
  };

  it('delays the joins after a bad one from the same address, and a good token still joins', async () => {
    const Ctor = serviceClient('devicemesh.v1.Identity');
    const creds = grpc.credentials.createSsl(Buffer.from(cp.security?.caPem as string), null, null, { checkServerIdentity: spiffeServerCheck({ kind: 'control-plane' }) });
    const client = new Ctor(cp.grpcAddress, creds, SPIFFE_CHANNEL_OPTIONS);
    const badJoin = (): Promise<grpc.status> =>
      new Promise((resolve) => {
        ((client as unknown as Record<string, Unary>).Join as Unary).call(client, { token: 'DMT1-00-bad-guess', csrPem: '' }, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (err) =>
          resolve(err ? err.code : grpc.status.OK),
        );
      });
    assert.notEqual(await badJoin(), grpc.status.OK);
    assert.equal(await throttled('delayed'), 0);
    assert.notEqual(await badJoin(), grpc.status.OK);
    assert.notEqual(await badJoin(), grpc.status.OK);
    assert.equal(await throttled('delayed'), 2);
    const security = cp.security;
    assert.ok(security);
    const member = new CredentialManager({ controlPlane: cp.grpcAddress, identity: { kind: 'host', id: 'gw1' }, token: () => security.createToken('host', 'gw1'), log: silentLog });
    try {
      await member.start();
    } finally {
      member.close();
    }
    const delayed = await throttled('delayed');
    assert.ok(delayed >= 3, 'the good join waited its turn too');
    // Its success cleared the address: the next failure is not delayed.
    assert.notEqual(await badJoin(), grpc.status.OK);
    assert.equal(await throttled('delayed'), delayed);
    client.close();
  });
});
