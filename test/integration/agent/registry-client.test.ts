import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { registryClient, type ReportHostResponse } from '../../../agent/registry-client';
import { freePort } from '../../helpers/processes';
import { FakeControlPlane } from './fake-control-plane';

function reportHost(client: ReturnType<typeof registryClient>): Promise<{ err: grpc.ServiceError | null; res?: ReportHostResponse }> {
  return new Promise((resolve) => {
    client.reportHost({ hostId: 'gw1', endpoints: [] }, { deadline: Date.now() + 5000 }, (err, res) => resolve(res ? { err, res } : { err }));
  });
}

describe('agent/registry-client: replica failover over real gRPC', () => {
  let cp: FakeControlPlane;

  before(async () => {
    cp = await FakeControlPlane.start();
  });

  after(() => cp.close());

  it('a call that finds its replica gone moves the next call on to the next replica, which answers', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const client = registryClient(`${dead},${cp.address}`);
    try {
      const first = await reportHost(client);
      assert.equal(first.err?.code, grpc.status.UNAVAILABLE, 'the first replica is not there');
      const second = await reportHost(client);
      assert.equal(second.err, null);
      assert.equal(second.res?.registered, 0);
      assert.equal(cp.reports.length, 1, 'the second replica got the report');
      assert.equal((await reportHost(client)).err, null, 'and keeps getting them');
      assert.equal(cp.reports.length, 2);
    } finally {
      client.close();
    }
  });

  it('a call the replica refuses (not a replica gone) stays on that replica', async () => {
    // The fake serves ReportHost only: ReportLoad is UNIMPLEMENTED there, a refusal, not an absence.
    const client = registryClient(`${cp.address},127.0.0.1:${await freePort()}`);
    try {
      const refused = await new Promise<grpc.ServiceError | null>((resolve) =>
        client.reportLoad({ hostId: 'gw1', bindings: [], devices: [] }, { deadline: Date.now() + 5000 }, (err) => resolve(err)),
      );
      assert.equal(refused?.code, grpc.status.UNIMPLEMENTED);
      const reports = cp.reports.length;
      assert.equal((await reportHost(client)).err, null, 'the next call still goes to the live replica');
      assert.equal(cp.reports.length, reports + 1);
    } finally {
      client.close();
    }
  });
});
