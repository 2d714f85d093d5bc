import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseOptions } from '../../../bench/hotplug/options';
import { type CliResult, REPO_ROOT, runScript } from '../../helpers/processes';
import { haveSocat } from '../../helpers/pty';

const MAIN = path.join(REPO_ROOT, 'dist', 'bench', 'hotplug', 'main.js');

const runBench = (args: string[]): Promise<CliResult> => runScript(MAIN, args);

describe('bench/hotplug', function () {
  this.timeout(120_000);

  it('--quick plugs and pulls a pty on a real control plane and agent and writes finite figures; speed is not asserted', async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (scripts/install-test-deps.sh installs it)');
      this.skip();
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-bench-hotplug-'));
    try {
      const out = path.join(dir, 'hotplug.json');
      const r = await runBench(['--quick', '--out', out]);
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
      assert.match(r.stdout, /plug → in register +p50/);
      assert.match(r.stdout, /pull → out of register p50/);
      const report = JSON.parse(fs.readFileSync(out, 'utf8'));
      assert.equal(report.benchmark, 'hotplug');
      assert.equal(report.rounds.length, 2);
      for (const round of report.rounds) {
        assert.ok(Number.isFinite(round.plugMs) && round.plugMs > 0, JSON.stringify(round));
        assert.ok(Number.isFinite(round.pullMs) && round.pullMs > 0, JSON.stringify(round));
      }
      for (const figure of [report.plug.p50, report.plug.max, report.pull.p50, report.pull.max]) assert.ok(Number.isFinite(figure), JSON.stringify(report));
      assert.equal(report.goalMs, 200);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses malformed flags with the flag named, and --help', () => {
    assert.equal(parseOptions(['--help']), undefined);
    assert.throws(() => parseOptions(['--rounds', 'many']), /--rounds.*"many" is not an integer/);
    assert.throws(() => parseOptions(['--rounds', '0']), /--rounds.*from 1 to 1000/);
    assert.throws(() => parseOptions(['--poll-ms', '2.5']), /--poll-ms/);
    assert.throws(() => parseOptions(['--bogus']), /Unknown option '--bogus'/);
    assert.throws(() => parseOptions(['stray']), /positional/);
    const quick = parseOptions(['--quick', '--out', 'x.json']);
    assert.deepEqual({ ...quick, out: path.basename(quick?.out ?? '') }, { rounds: 2, pollMs: 10, quick: true, out: 'x.json' });
    assert.equal(parseOptions([])?.rounds, 10);
  });
});
