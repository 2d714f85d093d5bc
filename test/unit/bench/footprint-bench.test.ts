import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { benchArgs } from '../../../bench/common/bench-options';
import { parseResidentMemory, residentMemory } from '../../../bench/common/process-memory';

describe('bench/common: benchArgs and resident memory', () => {
  it('benchArgs gives the flags as written, --quick and the results file; undefined for --help; malformed lines refused', () => {
    const now = new Date('2026-12-07T17:00:00.123Z');
    assert.equal(benchArgs('x', ['--help'], ['runs']), undefined);
    const args = benchArgs('x', ['--runs', '7', '--quick'], ['runs'], now);
    assert.deepEqual(args?.values, { runs: '7' });
    assert.equal(args?.quick, true);
    assert.equal(path.basename(args?.out ?? ''), 'x-2026-12-07T17-00-00Z.json');
    assert.equal(benchArgs('x', ['--out', 'y.json'], ['runs'], now)?.out, path.resolve('y.json'));
    assert.throws(() => benchArgs('x', ['--bogus'], ['runs']), /Unknown option '--bogus'/);
    assert.throws(() => benchArgs('x', ['stray'], ['runs']), /positional/);
    assert.throws(() => benchArgs('x', ['--runs'], ['runs']), /argument missing/);
  });

  it('reads VmRSS, RssAnon and RssFile of a live process, and names a missing line', () => {
    const own = residentMemory(process.pid);
    assert.ok(own.rssMB > 0 && own.anonMB > 0 && own.fileMB > 0, JSON.stringify(own));
    assert.deepEqual(parseResidentMemory('VmRSS:\t  2048 kB\nRssAnon:\t 1024 kB\nRssFile:\t 1024 kB\n', 1), { rssMB: 2, anonMB: 1, fileMB: 1 });
    assert.throws(() => parseResidentMemory('VmRSS:\t  2048 kB\nRssFile:\t 1024 kB\n', 7), /\/proc\/7\/status has no RssAnon line/);
    assert.throws(() => parseResidentMemory('VmRSS:\t  lots kB\nRssAnon:\t 1 kB\nRssFile:\t 1 kB\n', 7), /no VmRSS line/);
  });
});
