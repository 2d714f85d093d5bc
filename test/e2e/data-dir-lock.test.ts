import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliAsync, freePort, MeshProcess, waitFor } from '../helpers/processes';

describe('e2e: one control plane per data directory', function () {
  this.timeout(90_000);
  let dir: string;
  const running: MeshProcess[] = [];

  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-lock-e2e-'))));
  after(async () => {
    for (const p of running) await p.stop('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(name: string): Promise<MeshProcess> {
    const p = MeshProcess.start(name, ['control-plane', '--listen', `127.0.0.1:${await freePort()}`, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', dir, '--insecure']);
    running.push(p);
    await waitFor(`${name} to serve`, () => p.output().includes('control plane ready'), 30_000);
    return p;
  }

  it('a second control plane on the directory exits 1 naming the holder; after the holder stops or is killed, the next one starts', async () => {
    const first = await start('lock-first');
    const second = await cliAsync(['control-plane', '--listen', `127.0.0.1:${await freePort()}`, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', dir, '--insecure']);
    assert.equal(second.code, 1, second.stderr);
    const lines = second.stderr.trim().split('\n').filter((l) => l.startsWith('devicemesh: '));
    assert.equal(lines.length, 1, second.stderr);
    assert.match(lines[0] as string, new RegExp(`the data directory ${dir} is in use by another control plane \\(pid ${first.child.pid} on ${os.hostname()}, since `));

    assert.equal(await first.stop('SIGTERM'), 0);
    const third = await start('lock-third');
    // Killed, it leaves its lock behind: a stale lock, taken over by the next.
    await third.stop('SIGKILL');
    assert.ok(fs.existsSync(path.join(dir, 'control-plane.lock')));
    await start('lock-fourth');
  });
});
