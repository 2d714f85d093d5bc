import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseOptions } from '../../../bench/flood/options';
import { type CliResult, REPO_ROOT, runScript } from '../../helpers/processes';

const MAIN = path.join(REPO_ROOT, 'dist', 'bench', 'flood', 'main.js');

const runBench = (args: string[]): Promise<CliResult> => runScript(MAIN, args);

describe('bench/flood', function () {
  this.timeout(120_000);

  it('--quick runs both refusal modes to the end and writes finite figures; speed is not asserted', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-bench-flood-'));
    try {
      const out = path.join(dir, 'flood.json');
      const r = await runBench(['--quick', '--out', out]);
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
      assert.match(r.stdout, /rate refusal +connected +idle p50/);
      const report = JSON.parse(fs.readFileSync(out, 'utf8'));
      assert.equal(report.benchmark, 'flood');
      assert.deepEqual(
        report.runs.map((run: { mode: string }) => run.mode),
        ['on-socket', 'at-accept'],
      );
      for (const run of report.runs) {
        for (const figure of [run.idle.p50, run.during.p50, run.ratio, run.attackerConnectionsPerSecond, run.refusedPerSecond]) {
          assert.ok(Number.isFinite(figure), `${run.mode}: ${JSON.stringify(run)}`);
        }
        assert.ok(run.refused > 0, `${run.mode}: the flood was refused by the limits`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses malformed flags with the flag named, and --help', () => {
    assert.equal(parseOptions(['--help']), undefined);
    assert.throws(() => parseOptions(['--round-trips', 'many']), /--round-trips.*"many" is not an integer/);
    assert.throws(() => parseOptions(['--rates', '5000,0']), /--rates.*"0".*from 1 to 1000000/);
    assert.throws(() => parseOptions(['--rates', '5000,,10']), /--rates.*""/);
    assert.throws(() => parseOptions(['--rounds', '2.5']), /--rounds/);
    assert.throws(() => parseOptions(['--bogus']), /Unknown option '--bogus'/);
    assert.throws(() => parseOptions(['stray']), /positional/);
    const quick = parseOptions(['--quick', '--out', 'x.json']);
    assert.deepEqual({ ...quick, out: path.basename(quick?.out ?? '') }, { roundTrips: 2000, rates: [5000], rounds: 1, quick: true, out: 'x.json' });
  });
});
