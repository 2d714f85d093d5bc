import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ListEndpointsResponse } from '../../src/proto/types';
import { cli, freePort, MeshProcess, waitFor } from '../helpers/processes';

const DEVICES = 200;

/**
 * 200 devices appearing and vanishing in bursts in a watched directory (plain files: the watcher
 * counts anything that is not a directory, and nothing here opens them): the register ends
 * exactly right, and the agent holds no more file descriptors than before.
 */
describe('e2e: register churn', function () {
  this.timeout(120_000);

  let tmp: string;
  let cp: string;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;

  const fdCount = (): number => fs.readdirSync(`/proc/${agent.child.pid}/fd`).length;
  const register = (): ListEndpointsResponse => {
    const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ListEndpointsResponse;
  };
  const file = (i: number): string => path.join(tmp, 'devs', `dev${String(i).padStart(3, '0')}`);

  before(async function () {
    if (process.platform !== 'linux') {
      console.log('    skipped: counting file descriptors needs /proc (Linux)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-churn-'));
    fs.mkdirSync(path.join(tmp, 'devs'));
    const port = await freePort();
    cp = `127.0.0.1:${port}`;
    controlPlane = MeshProcess.start('e2e-churn-control-plane', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', path.join(tmp, 'data')]);
    agent = MeshProcess.start('e2e-churn-agent', [
      'agent',
      '--host-id', 'churn',
      '--control-plane', cp,
      '--listen', `127.0.0.1:${await freePort()}`,
      '--admin', `127.0.0.1:${await freePort()}`,
      '--watch', `serial:${path.join(tmp, 'devs', 'dev*')}`,
    ]);
    await waitFor('the agent connected', () => register().hosts.some((h) => h.id === 'churn' && h.state === 'HOST_STATE_CONNECTED'), 20_000);
  });

  after(async () => {
    await Promise.all([agent?.stop(), controlPlane?.stop()]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('ends exactly right after bursts of 200 devices coming and going, without leaking file descriptors', async () => {
    const fdsBefore = fdCount();
    const present = new Set<number>();
    const plug = (i: number): void => {
      fs.writeFileSync(file(i), '');
      present.add(i);
    };
    const pull = (i: number): void => {
      fs.rmSync(file(i));
      present.delete(i);
    };
    // Bursts with no pause between them, each a different mix.
    for (let i = 0; i < DEVICES; i++) plug(i);
    for (let i = 0; i < DEVICES; i += 4) pull(i);
    for (let i = 0; i < DEVICES; i += 3) if (!present.has(i)) plug(i);
    for (let i = DEVICES - 1; i >= 0; i -= 7) if (present.has(i)) pull(i);
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < DEVICES; i += 2) if (present.has(i)) pull(i);
    for (let i = 1; i < DEVICES; i += 10) if (!present.has(i)) plug(i);

    const expectExactly = async (what: string): Promise<void> => {
      await waitFor(what, () => {
        const mine = register().endpoints.filter((e) => e.hostId === 'churn');
        const shown = new Set(mine.filter((e) => e.state === 'ENDPOINT_STATE_PRESENT').map((e) => e.path));
        return shown.size === present.size && [...present].every((i) => shown.has(file(i)));
      }, 30_000);
      const mine = register().endpoints.filter((e) => e.hostId === 'churn');
      for (const e of mine) {
        const i = Number(path.basename(e.path).slice(3));
        assert.equal(e.state, present.has(i) ? 'ENDPOINT_STATE_PRESENT' : 'ENDPOINT_STATE_ABSENT', `${e.path} is ${e.state}`);
      }
    };
    await expectExactly(`the register to show the ${present.size} devices present`);
    console.log(`      ${present.size} present and ${DEVICES - present.size} absent after the bursts`);

    for (const i of [...present]) pull(i);
    await expectExactly('every device absent');
    const fdsAfter = await waitFor('the agent to hold no more descriptors than before', () => {
      const n = fdCount();
      return n <= fdsBefore ? n : undefined;
    }, 10_000).catch(() => fdCount());
    assert.ok(fdsAfter <= fdsBefore, `the agent held ${fdsBefore} descriptors before and ${fdsAfter} after`);
    console.log(`      agent file descriptors: ${fdsBefore} before, ${fdsAfter} after`);
  });
});
