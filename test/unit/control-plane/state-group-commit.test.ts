import * as assert from 'node:assert/strict';
import { GroupCommit, type Outcome } from '../../../control-plane/group-commit';

describe('control-plane group commit', () => {
  it('batches what arrives while a batch is committed, in order, answering each job its own outcome', async () => {
    const batches: number[][] = [];
    let release: () => void = () => undefined;
    const commit = new GroupCommit<number, string>(async (jobs): Promise<Outcome<string>[]> => {
      batches.push([...jobs]);
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return jobs.map((j) => (j % 5 === 0 ? { ok: false, error: new Error(`refused ${j}`) } : { ok: true, value: `done ${j}` }));
    });
    const first = [1, 2].map((j) => commit.submit(j));
    await new Promise((r) => setImmediate(r));
    const second = [3, 4, 5, 6].map((j) => commit.submit(j));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(batches, [[1, 2]], 'the second batch waits for the first');
    release();
    assert.deepEqual(await Promise.all(first), ['done 1', 'done 2']);
    assert.deepEqual(await Promise.all([second[0], second[1], second[3]]), ['done 3', 'done 4', 'done 6']);
    await assert.rejects(second[2] as Promise<string>, /refused 5/);
    assert.deepEqual(batches, [[1, 2], [3, 4, 5, 6]]);
  });

  it('fails every job of a batch whose commit throws, then carries on; idle waits for all', async () => {
    let fail = true;
    const commit = new GroupCommit<number, number>(async (jobs) => {
      if (fail) throw new Error('disk full');
      return jobs.map((value) => ({ ok: true, value }));
    });
    const failed = [commit.submit(1), commit.submit(2)];
    for (const p of failed) await assert.rejects(p, /disk full/);
    fail = false;
    const later = commit.submit(3);
    await commit.idle();
    assert.equal(await later, 3);
  });
});
