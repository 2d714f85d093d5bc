import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LOCK_FILE, lockDataDir } from '../../../control-plane/data-dir-lock';
import { UnavailableError } from '../../../src/errors';

describe('data directory lock', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-lock-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names its holder in the lock file and removes it on release', () => {
    const lock = lockDataDir(path.join(dir, 'data'));
    const holder = JSON.parse(fs.readFileSync(lock.file, 'utf8')) as { pid: number; host: string };
    assert.equal(holder.pid, process.pid);
    assert.equal(holder.host, os.hostname());
    assert.deepEqual(fs.readdirSync(path.join(dir, 'data')), [LOCK_FILE], 'no draft left behind');
    lock.release();
    assert.equal(fs.existsSync(lock.file), false);
  });

  it('refuses a second taker while the holder lives, naming it', () => {
    const lock = lockDataDir(dir);
    assert.throws(
      () => lockDataDir(dir),
      (err: unknown) =>
        err instanceof UnavailableError &&
        err.message.includes(`the data directory ${dir} is in use by another control plane (pid ${process.pid} on ${os.hostname()}`),
    );
    lock.release();
    lockDataDir(dir).release();
  });

  it('takes over a lock left by a process that is gone', () => {
    // A real pid that has exited: a child run to its end.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid, host: os.hostname(), startedAt: '2020-01-01T00:00:00Z' }));
    const lock = lockDataDir(dir);
    assert.equal((JSON.parse(fs.readFileSync(lock.file, 'utf8')) as { pid: number }).pid, process.pid);
    lock.release();
  });

  it('takes over a lock file that is not one it wrote (empty, garbage)', () => {
    for (const junk of ['', '{', '{"pid":"x"}', 'null']) {
      fs.writeFileSync(path.join(dir, LOCK_FILE), junk);
      lockDataDir(dir).release();
    }
  });

  it('counts a holder on another host as alive (a shared volume)', () => {
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'some-other-host', startedAt: 'then' }));
    assert.throws(() => lockDataDir(dir), /in use by another control plane \(pid 1 on some-other-host, since then\)/);
  });

  it('does not remove a lock another process holds when a released one is released again', () => {
    const lock = lockDataDir(dir);
    lock.release();
    fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'some-other-host', startedAt: 'then' }));
    lock.release();
    assert.ok(fs.existsSync(path.join(dir, LOCK_FILE)));
  });

  it('says why when the directory cannot be made', () => {
    fs.writeFileSync(path.join(dir, 'file'), '');
    assert.throws(() => lockDataDir(path.join(dir, 'file', 'data')), (err: unknown) => err instanceof UnavailableError && /cannot lock the data directory .*ENOTDIR/.test(err.message));
  });
});
