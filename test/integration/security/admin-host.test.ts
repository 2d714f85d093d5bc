import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import { startAdminServer, type RunningAdmin } from '../../../src/admin/admin-server';
import { createLogger } from '../../../src/log';
import { Stats } from '../../../src/telemetry/stats';

/** A real HTTP GET to `address` with the Host header given (raw, as a rebinding browser would send it). */
function get(address: string, path: string, host: string | undefined): Promise<{ status: number; body: string }> {
  const [hostname, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, method: 'GET', setHost: false, headers: host === undefined ? {} : { host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Issue 15, low item: the admin servers (the control plane's, the agent's and the sidecar's are this one) refuse DNS rebinding. */
describe('admin server: Host header check (DNS rebinding)', () => {
  let admin: RunningAdmin;
  let stats: Stats;
  const lines: string[] = [];

  before(async () => {
    stats = new Stats({});
    const log = createLogger('test', {}, { format: 'json', stream: { write: (line: string) => void lines.push(line) } });
    admin = await startAdminServer('127.0.0.1:0', { ready: () => true, stats, configDump: () => ({ secret: 'mappings' }) }, log);
  });
  after(() => admin.close());

  it('answers Host values naming loopback or its listen address', async () => {
    const port = admin.address.split(':')[1] as string;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '127.0.0.2']) {
      const r = await get(admin.address, '/config_dump', host);
      assert.equal(r.status, 200, host);
      assert.match(r.body, /mappings/);
    }
  });

  it('refuses another name with 421, counts each refusal and logs them rate-limited', async () => {
    lines.length = 0;
    for (let i = 0; i < 20; i += 1) {
      const r = await get(admin.address, '/config_dump', 'rebind.attacker.example:15000');
      assert.equal(r.status, 421);
      assert.doesNotMatch(r.body, /mappings/);
    }
    for (const host of ['', '10.0.0.1', '127.0.0.1.attacker.example', 'localhost.attacker.example']) {
      assert.equal((await get(admin.address, '/api/overview', host)).status, 421, host);
    }
    assert.match(stats.renderText(), /admin_requests_refused\{reason=unknown_host\}: 24/);
    const logged = lines.filter((l) => l.includes('admin request refused'));
    assert.equal(logged.length, 1, `one line per reason and peer per window, not one per request:\n${logged.join('')}`);
  });
});
