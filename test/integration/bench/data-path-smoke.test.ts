import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type CliResult, REPO_ROOT, runScript } from '../../helpers/processes';

const MAIN = path.join(REPO_ROOT, 'dist', 'bench', 'data-path', 'main.js');

const runBench = (args: string[]): Promise<CliResult> => runScript(MAIN, args);

function assertFinite(value: unknown, where: string): void {
  assert.equal(typeof value, 'number', `${where} is not a number: ${JSON.stringify(value)}`);
  assert.ok(Number.isFinite(value), `${where} is not finite: ${String(value)}`);
}

const installed = (tool: string, flag: string): boolean => spawnSync(tool, [flag], { stdio: 'ignore' }).status === 0;

/** Runs the benchmark in its --quick form and checks the shape of what it writes; speed is not asserted. */
describe('bench/data-path --quick', function () {
  this.timeout(180_000);
  let dir: string;

  before(function () {
    if (!installed('socat', '-V')) {
      console.log('    skipped: socat is not installed (apt-get install socat): every path of the benchmark runs over a socat pty pair');
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-bench-test-'));
  });
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it('runs every path to the end and writes its figures as finite numbers', async () => {
    const out = path.join(dir, 'data-path.json');
    const r = await runBench(['--quick', '--out', out]);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /round trip on fresh ports \(µs\)/);
    assert.match(r.stdout, /bulk throughput \(MB\/s/);
    assert.match(r.stdout, /round trip after the bulk transfer \(µs\)/);
    assert.match(r.stdout, /devicemesh targets \(reported, not enforced\)/);

    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(report.benchmark, 'data-path');
    assertFinite(report.machine.cpus, 'machine.cpus');
    assert.equal(typeof report.machine.node, 'string');
    assert.deepEqual(
      report.paths.map((p: { path: string }) => p.path),
      ['direct', 'ser2net', 'ser2net-tuned', 'node-relay', 'devicemesh', 'devicemesh-one-hop'],
    );
    const haveSer2net = installed('ser2net', '-v');
    assert.equal(report.tools.ser2net === null, !haveSer2net);
    if (!haveSer2net) console.log('    note: ser2net is not installed, so its paths were skipped (apt-get install ser2net)');

    for (const p of report.paths) {
      assert.equal(p.error, undefined, `${p.path} failed: ${p.error}`);
      if (p.skipped !== undefined) {
        assert.ok(p.path.startsWith('ser2net') && !haveSer2net, `${p.path} skipped: ${p.skipped}`);
        assert.match(p.skipped, /ser2net not installed/);
        continue;
      }
      for (const phase of ['roundTripUs', 'roundTripAfterBulkUs']) {
        assert.equal(p[phase].samples, 200, `${p.path} ${phase}.samples`);
        for (const f of ['p50', 'p90', 'p99', 'max', 'mean']) assertFinite(p[phase][f], `${p.path} ${phase}.${f}`);
      }
      assert.equal(p.bulk.bytes, 4 * 1024 * 1024, `${p.path} bulk bytes`);
      assertFinite(p.bulk.seconds, `${p.path} bulk.seconds`);
      assertFinite(p.bulk.mbPerSecond, `${p.path} bulk.mbPerSecond`);
      for (const phase of ['roundTrips', 'bulk', 'roundTripsAfterBulk']) {
        assertFinite(p.cpu[phase].wallSeconds, `${p.path} cpu.${phase}.wallSeconds`);
        for (const [name, s] of Object.entries(p.cpu[phase].bySeconds)) assertFinite(s, `${p.path} cpu.${phase}.${name}`);
      }
    }
    const versus = report.versusDirect.map((v: { path: string }) => v.path);
    assert.ok(versus.includes('devicemesh'), `no devicemesh comparison: ${JSON.stringify(versus)}`);
    assert.ok(versus.includes('devicemesh-one-hop'), `no one-hop comparison: ${JSON.stringify(versus)}`);
    for (const v of report.versusDirect) {
      for (const f of ['p50', 'p90', 'p99']) {
        assertFinite(v.addedRoundTripUs[f], `${v.path} addedRoundTripUs.${f}`);
        assertFinite(v.addedRoundTripAfterBulkUs[f], `${v.path} addedRoundTripAfterBulkUs.${f}`);
      }
      assertFinite(v.throughputPercentOfDirect, `${v.path} throughputPercentOfDirect`);
    }
    // Which targets are met depends on the machine; that there is a verdict for each does not:
    // per phase (fresh ports, after bulk) p50 and p99 over direct and against ser2net, then bulk;
    // then one hop's p50 and p99 against ser2net per phase, and its bulk.
    assert.equal(report.targets.length, haveSer2net ? 9 + 5 : 5 + 1);
    for (const t of report.targets) {
      assertFinite(t.value, `target ${t.name}`);
      assert.equal(typeof t.met, 'boolean');
    }
  });

  it('runs the pty endpoint beside the raw TCP one (npm run bench:pty) and writes both paths\' figures', async () => {
    const out = path.join(dir, 'pty.json');
    const r = await runBench(['--quick', '--paths', 'direct,devicemesh,devicemesh-pty', '--out', out]);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /devicemesh-pty +app opens the sidecar's pty/);
    const report = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.deepEqual(report.paths.map((p: { path: string }) => p.path), ['direct', 'devicemesh', 'devicemesh-pty']);
    for (const p of report.paths) {
      assert.equal(p.error, undefined, `${p.path} failed: ${p.error}`);
      assert.equal(p.roundTripUs.samples, 200, `${p.path} round trips`);
      assertFinite(p.roundTripUs.p50, `${p.path} roundTripUs.p50`);
      assert.equal(p.bulk.bytes, 4 * 1024 * 1024, `${p.path} bulk bytes`);
      assertFinite(p.bulk.mbPerSecond, `${p.path} bulk.mbPerSecond`);
    }
    assert.deepEqual(report.versusDirect.map((v: { path: string }) => v.path), ['devicemesh', 'devicemesh-pty']);
  });

  it('refuses a bad flag with exit status 2 and says which', async () => {
    const bad = await runBench(['--paths', 'direct,carrier-pigeon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--paths: "carrier-pigeon" is not one of direct, direct-event-loop, ser2net, ser2net-tuned, node-relay, devicemesh, devicemesh-one-hop, devicemesh-plaintext, devicemesh-pty/);
    const rounds = await runBench(['--iterations', '3', '--rounds', '4']);
    assert.equal(rounds.code, 2);
    assert.match(rounds.stderr, /--rounds 4 is more than --iterations 3/);
  });
});
