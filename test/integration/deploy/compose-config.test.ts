import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../helpers/processes';

function compose(args: string[], cwd: string): { code: number | null; output: string } {
  const r = spawnSync('docker-compose', args, { cwd, encoding: 'utf8', timeout: 30_000, env: { ...process.env, DEVICEMESH_SERIAL_DEVICE: '' } });
  return { code: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** docker-compose validates the file without an engine: unknown keys and bad values are refused. */
describe('docker-compose.yml', function () {
  this.timeout(60_000);

  before(function () {
    if (spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status !== 0) {
      console.log('      skipped: docker-compose is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
  });

  it('passes `docker-compose config -q`', () => {
    const r = compose(['-f', 'docker-compose.yml', 'config', '-q'], REPO_ROOT);
    assert.equal(r.code, 0, r.output);
  });

  it('has the topology: a device passed through, a simulated fallback, a sidecar in the app\'s network namespace', () => {
    // The file as docker-compose resolved it (anchors merged, variables substituted).
    const r = compose(['-f', 'docker-compose.yml', 'config'], REPO_ROOT);
    assert.equal(r.code, 0, r.output);
    const services = (parse(r.output) as { services: Record<string, Record<string, unknown>> }).services;
    assert.deepEqual(Object.keys(services).sort(), ['agent', 'agent-simulated', 'app', 'app-sidecar', 'bindings', 'control-plane', 'tokens']);
    assert.deepEqual(services.agent?.devices, ['/dev/ttyUSB0:/dev/ttyUSB0']);
    // Only the hardware agent waits for a profile: without a device, the simulated agent serves the mesh.
    const profiled = Object.entries(services).filter(([, s]) => s.profiles !== undefined).map(([name]) => name);
    assert.deepEqual(profiled, ['agent']);
    assert.equal(services['app-sidecar']?.network_mode, 'service:app');
    // Secure by default: every member joins with a token file from the volume the tokens job fills, after it has.
    for (const name of ['agent', 'agent-simulated', 'app-sidecar']) {
      assert.ok((services[name]?.volumes as string[]).includes('join-tokens:/var/lib/devicemesh-join:ro'), name);
      assert.deepEqual((services[name]?.depends_on as Record<string, unknown>).tokens, { condition: 'service_completed_successfully' }, name);
    }
    for (const name of ['control-plane', 'agent', 'agent-simulated', 'app-sidecar', 'bindings', 'tokens']) {
      assert.equal(services[name]?.image, 'devicemesh:0.1.0', name);
    }
  });

  it('the same check refuses a file with an unknown key (it is not a no-op)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-compose-'));
    try {
      const text = fs.readFileSync(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8').replace(/^ {2}app:\n/m, '  app:\n    colour: red\n');
      fs.writeFileSync(path.join(dir, 'docker-compose.yml'), text);
      const r = compose(['-f', 'docker-compose.yml', 'config', '-q'], dir);
      assert.notEqual(r.code, 0);
      assert.match(r.output, /Unsupported config option for services\.app: 'colour'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
