import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type CliResult, REPO_ROOT, runScript } from '../../helpers/processes';

const MAIN = path.join(REPO_ROOT, 'dist', 'bench', 'control-plane', 'main.js');

const runBench = (args: string[]): Promise<CliResult> => runScript(MAIN, args);

function assertFinite(value: unknown, where: string): void {
  assert.equal(typeof value, 'number', `${where} is not a number: ${JSON.stringify(value)}`);
  assert.ok(Number.isFinite(value), `${where} is not finite: ${String(value)}`);
}

/** Runs the benchmark in its --quick form and checks the shape of what it writes; speed is not asserted. */
describe('bench/control-plane --quick', function () {
  this.timeout(180_000);
  let dir: string;

  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-bench-test-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs to the end and writes every figure as a finite number', async () => {
    const out = path.join(dir, 'control-plane.json');
    const r = await runBench(['--quick', '--out', out]);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /change → ACK \(ms\)/);
    assert.match(r.stdout, /RSS peak \(VmHWM\)/);

    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(report.benchmark, 'control-plane');
    assertFinite(report.machine.cpus, 'machine.cpus');
    assert.deepEqual(report.options.proxies, [20]);
    assert.equal(report.options.endpoints, 1000);
    assert.equal(typeof report.delta.available, 'boolean');
    for (const f of ['endpoints', 'totalMs', 'perSecond', 'firstTenthPerSecond', 'lastTenthPerSecond']) assertFinite(report.registration[f], `registration.${f}`);
    assert.ok(report.runs.some((run: { protocol: string }) => run.protocol === 'sotw'), 'no sotw run');
    if (report.delta.available) assert.ok(report.runs.some((run: { protocol: string }) => run.protocol === 'delta'), 'no delta run');

    for (const run of report.runs) {
      const where = `${run.protocol}/${run.proxies}`;
      assert.equal(run.error, undefined, `${where} failed: ${run.error}`);
      assert.equal(run.proxies, 20);
      assertFinite(run.applyBindingsMs, `${where} applyBindingsMs`);
      assertFinite(run.connectAllMs, `${where} connectAllMs`);
      for (const [name, samples] of [['oneBindingChangeToAckMs', 20], ['oneBindingApplyRpcMs', 20], ['allProxiesChangeToLastAckMs', 3]] as const) {
        assert.equal(run[name].samples, samples, `${where} ${name}.samples`);
        for (const f of ['p50', 'p99', 'max', 'mean']) assertFinite(run[name][f], `${where} ${name}.${f}`);
      }
      for (const f of ['connectedIdle', 'maxSampled', 'peak']) assertFinite(run.controlPlane.rssMB[f], `${where} rssMB.${f}`);
      for (const f of ['idle', 'changes']) assertFinite(run.controlPlane.cpuPercentOfOneCore[f], `${where} cpu.${f}`);
    }
    // Targets are defined for 1,000 proxies only.
    assert.deepEqual(report.targets, []);
  });
});
