import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { directoryMode, directoryProblem, type FileFacts, prepareSocketPath, socketMode, socketPathProblem } from '../../../../agent/one-hop/socket-directory';
import { AlreadyExistsError, PermissionDeniedError } from '../../../../src/errors';

const facts = (kind: 'dir' | 'link' | 'file' | 'socket', uid: number, mode: number): FileFacts => ({
  uid,
  mode,
  isDirectory: () => kind === 'dir',
  isSymbolicLink: () => kind === 'link',
  isSocket: () => kind === 'socket',
});

describe('agent one-hop: the socket’s directory and file', () => {
  const owner = { uid: 1001, gid: undefined };

  it('accepts a directory of the owner that nobody else may write', () => {
    assert.equal(directoryProblem('/run/dm/app1', facts('dir', 1001, 0o40700), owner), undefined);
    assert.equal(directoryProblem('/run/dm/app1', facts('dir', 1001, 0o40750), owner), undefined);
  });

  it('refuses a symlink, a file, another uid’s directory, or one others may write', () => {
    assert.match(directoryProblem('/d', facts('link', 1001, 0o777), owner) ?? '', /is not a directory/);
    assert.match(directoryProblem('/d', facts('file', 1001, 0o600), owner) ?? '', /is not a directory/);
    assert.match(directoryProblem('/d', facts('dir', 1002, 0o700), owner) ?? '', /belongs to uid 1002, not to the binding's owner 1001/);
    assert.match(directoryProblem('/d', facts('dir', 1001, 0o770), owner) ?? '', /writable by others \(mode 770\)/);
    assert.match(directoryProblem('/d', facts('dir', 1001, 0o702), owner) ?? '', /writable by others/);
  });

  it('replaces only a stale socket at the path', () => {
    assert.equal(socketPathProblem('/d/s', facts('socket', 0, 0o600)), undefined);
    assert.match(socketPathProblem('/d/s', facts('file', 0, 0o600)) ?? '', /exists and is not a socket/);
  });

  it('gives the owner alone access, and a named group passage', () => {
    assert.equal(directoryMode(owner), 0o700);
    assert.equal(socketMode(undefined, owner), 0o600);
    assert.equal(directoryMode({ uid: 1, gid: 20 }), 0o710);
    assert.equal(socketMode(0, { uid: 1, gid: 20 }), 0o660);
    assert.equal(socketMode(0o640, owner), 0o640);
  });

  describe('on a real directory (as this process’s own uid)', () => {
    let tmp: string;
    const me = { uid: process.getuid?.() ?? 0, gid: undefined };
    beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-onehop-dir-'))));
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it('creates the directory 0700, the parents as needed', async () => {
      const socketPath = path.join(tmp, 'run', 'app1', 'm.sock');
      await prepareSocketPath(socketPath, me);
      const st = fs.statSync(path.dirname(socketPath));
      assert.equal(st.mode & 0o777, 0o700);
      assert.equal(st.uid, me.uid);
    });

    it('refuses a directory others may write, and a non-socket in the socket’s place', async () => {
      const dir = path.join(tmp, 'open');
      fs.mkdirSync(dir);
      fs.chmodSync(dir, 0o777);
      await assert.rejects(prepareSocketPath(path.join(dir, 'm.sock'), me), (err: unknown) => err instanceof PermissionDeniedError && /writable by others/.test(err.message));
      const mine = path.join(tmp, 'mine');
      fs.mkdirSync(mine, { mode: 0o700 });
      fs.writeFileSync(path.join(mine, 'm.sock'), 'not a socket');
      await assert.rejects(prepareSocketPath(path.join(mine, 'm.sock'), me), AlreadyExistsError);
    });

    it('refuses a directory that is a symlink to one the owner has', async () => {
      const real = path.join(tmp, 'real');
      fs.mkdirSync(real, { mode: 0o700 });
      fs.symlinkSync(real, path.join(tmp, 'link'));
      await assert.rejects(prepareSocketPath(path.join(tmp, 'link', 'm.sock'), me), /is not a directory/);
    });
  });
});
