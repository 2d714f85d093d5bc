import { strict as assert } from 'node:assert';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import { ControlPlaneClient } from '../../../cli/control-plane-client';
import { createLogger } from '../../../src/log';
import { httpGet } from '../../helpers/processes';
import { removeDir, tempDir } from '../../unit/control-plane/fixtures';

/** Issue 15, low item: a flood of refused calls is counted in full and logged in summary (one shared RefusalLog). */
describe('control plane: refused calls are logged rate-limited, counted in full', function () {
  this.timeout(60_000);
  let dir: string;
  let cp: RunningControlPlane;
  const lines: string[] = [];

  before(async () => {
    dir = await tempDir();
    const log = createLogger('control-plane', {}, { format: 'json', stream: { write: (line: string) => void lines.push(line) } });
    cp = await startControlPlane({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', dataDir: dir, log });
  });
  after(async () => {
    await cp?.close();
    await removeDir(dir);
  });

  it('logs one line for 40 writes refused without the operator credential, and counts 40', async () => {
    const client = new ControlPlaneClient(cp.grpcAddress, 5000, { caPem: cp.security?.caPem as string });
    for (let i = 0; i < 40; i += 1) {
      await assert.rejects(client.call('Bindings', 'Delete', { name: 'x' }), (err: Error & { code?: string }) => err.code === 'UNAUTHENTICATED');
    }
    client.close();
    const stats = (await httpGet(`http://${cp.adminAddress}/stats`)).body;
    assert.match(stats, /^auth_refused\{reason=no_operator_credential\}: 40$/m);
    const logged = lines.filter((l) => l.includes('"call refused"'));
    assert.equal(logged.length, 1, logged.join(''));
    assert.match(logged[0] as string, /"reason":"no_operator_credential"/);
  });
});
