import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, runScript } from '../../helpers/processes';
import { haveSocat } from '../../helpers/pty';

const bench = (name: string): string => path.join(REPO_ROOT, 'dist', 'bench', name, 'main.js');

/** A figure the bench measured: a finite number, not asserted against any target. */
function figure(value: unknown, what: string): void {
  assert.ok(typeof value === 'number' && Number.isFinite(value) && value >= 0, `${what}: ${JSON.stringify(value)}`);
}

describe('bench/footprint and bench/cli-startup (smoke runs; figures are not asserted)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-bench-footprint-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('footprint --quick writes the RSS of each process idle, at peak and after the load, with the probe\'s breakdown', async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
    const out = path.join(dir, 'footprint.json');
    const r = await runScript(bench('footprint'), ['--quick', '--settle', '0.5', '--seconds', '0.5', '--out', out]);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /^sidecar +\d/m);
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(report.benchmark, 'footprint');
    assert.ok(report.load.roundTrips > 0, JSON.stringify(report.load));
    assert.deepEqual(Object.keys(report.processes), ['bare-node', 'sidecar', 'agent', 'control-plane']);
    for (const [name, p] of Object.entries<Record<string, Record<string, unknown>>>(report.processes)) {
      for (const phase of ['idle', 'loadPeak', 'afterLoad']) for (const k of ['rssMB', 'anonMB', 'fileMB']) figure(p[phase]?.[k], `${name} ${phase} ${k}`);
      figure(p.idleProbe?.modules, `${name} modules`);
      figure((p.idleProbe?.memoryMB as Record<string, unknown>).heapUsed, `${name} heapUsed`);
      assert.ok(Array.isArray(p.idleProbe?.protoFiles), `${name} protoFiles`);
    }
    assert.equal(report.processes['bare-node'].idleProbe.modules, 1);
    assert.deepEqual(
      report.targets.map((t: { name: string }) => t.name),
      ['sidecar idle RSS', 'agent idle RSS', 'control-plane idle RSS', 'sidecar growth under load', 'agent growth under load'],
    );
  });

  it('cli-startup --runs 1 times --help, get endpoints and apply -f beside node -e 0, with what each loaded', async () => {
    const out = path.join(dir, 'cli.json');
    const r = await runScript(bench('cli-startup'), ['--runs', '1', '--out', out]);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(report.benchmark, 'cli-startup');
    assert.deepEqual(
      report.commands.map((c: { name: string }) => c.name),
      ['node -e 0', 'devicemesh --help', 'devicemesh get endpoints', 'devicemesh apply -f binding.yaml'],
    );
    for (const c of report.commands) {
      figure(c.wallMs.p50, `${c.name} wall`);
      figure(c.cpuMs.p50, `${c.name} cpu`);
      figure(c.modules, `${c.name} modules`);
      assert.equal(c.wallMs.samples, 1);
    }
    assert.equal(report.targets.length, 3);
  });
});
