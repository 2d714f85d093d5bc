import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ValidationError } from '../../../src/errors';
import { isReplicaDown, ReplicaSet } from '../../../src/grpc/replica-set';

/** A dialer that records what it dialled: the clients are plain records. */
function recordingDialer(): { dialled: string[]; dial: (address: string) => { address: string } } {
  const dialled: string[] = [];
  return { dialled, dial: (address) => (dialled.push(address), { address }) };
}

describe('src/grpc/replica-set', () => {
  it('dials every replica once, in order, and starts on the first', () => {
    const { dialled, dial } = recordingDialer();
    const replicas = new ReplicaSet('a:1, b:2,c:3', dial);
    assert.deepEqual(dialled, ['a:1', 'b:2', 'c:3']);
    assert.equal(replicas.current().address, 'a:1');
    assert.deepEqual(replicas.clients().map((c) => c.address), ['a:1', 'b:2', 'c:3']);
    assert.equal(replicas.current().client, replicas.clients()[0]);
  });

  it('moves on to the next replica when the current one fails, round the list', () => {
    const replicas = new ReplicaSet('a:1,b:2,c:3', recordingDialer().dial);
    assert.equal(replicas.failed().address, 'b:2');
    assert.equal(replicas.failed().address, 'c:3');
    assert.equal(replicas.failed().address, 'a:1');
    assert.equal(replicas.current().address, 'a:1');
  });

  it('skips no replica when calls to one replica fail together', () => {
    const replicas = new ReplicaSet('a:1,b:2,c:3', recordingDialer().dial);
    const first = replicas.current();
    const second = replicas.current();
    assert.equal(replicas.failed(first).address, 'b:2');
    assert.equal(replicas.failed(second).address, 'b:2', 'a late failure of the replica left behind moves nothing');
    assert.equal(replicas.failed(replicas.current()).address, 'c:3');
  });

  it('stays on a single replica', () => {
    const replicas = new ReplicaSet('only:1', recordingDialer().dial);
    assert.equal(replicas.failed().address, 'only:1');
    assert.equal(replicas.failed(replicas.current()).address, 'only:1');
  });

  it('refuses an address list that is not host:port, with a ValidationError, dialling nothing', () => {
    const { dialled, dial } = recordingDialer();
    assert.throws(() => new ReplicaSet('a:1,nonsense', dial), ValidationError);
    assert.throws(() => new ReplicaSet('', dial), ValidationError);
    assert.deepEqual(dialled, []);
  });

  it('counts UNAVAILABLE and DEADLINE_EXCEEDED as a replica gone, a refusal as not', () => {
    assert.equal(isReplicaDown({ code: grpc.status.UNAVAILABLE }), true);
    assert.equal(isReplicaDown({ code: grpc.status.DEADLINE_EXCEEDED }), true);
    for (const code of [grpc.status.INVALID_ARGUMENT, grpc.status.PERMISSION_DENIED, grpc.status.UNAUTHENTICATED, grpc.status.INTERNAL]) {
      assert.equal(isReplicaDown({ code }), false, grpc.status[code]);
    }
    assert.equal(isReplicaDown({}), false);
  });
});
