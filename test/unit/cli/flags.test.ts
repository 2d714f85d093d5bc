import { strict as assert } from 'node:assert';
import { durationMs, envName, type FlagSpec, parseFlags } from '../../../cli/flags';
import { ValidationError } from '../../../src/errors';

const SPECS: FlagSpec[] = [
  { name: 'host-id', kind: 'string', required: true, help: '' },
  { name: 'listen', kind: 'address', default: '127.0.0.1:15020', help: '' },
  { name: 'watch', kind: 'list', help: '' },
  { name: 'filename', short: 'f', kind: 'string', help: '' },
  { name: 'drain-timeout', kind: 'duration', default: '10s', help: '' },
];

describe('cli flags', () => {
  it('reads --flag value, --flag=value, -f value and repeated lists', () => {
    const p = parseFlags('agent', ['--host-id', 'gw1', '--listen=0.0.0.0:1', '--watch', '/dev/a*', '--watch', '/dev/b*', '-f', 'x.yaml', 'pos'], SPECS, {});
    assert.equal(p.values['host-id'], 'gw1');
    assert.equal(p.values.listen, '0.0.0.0:1');
    assert.deepEqual(p.lists.watch, ['/dev/a*', '/dev/b*']);
    assert.equal(p.values.filename, 'x.yaml');
    assert.deepEqual(p.positionals, ['pos']);
  });

  it('falls back to DEVICEMESH_* environment variables, then defaults', () => {
    assert.equal(envName('host-id'), 'DEVICEMESH_HOST_ID');
    const p = parseFlags('agent', [], SPECS, { DEVICEMESH_HOST_ID: 'gw9', DEVICEMESH_WATCH: '/dev/x*,/dev/y*' });
    assert.equal(p.values['host-id'], 'gw9');
    assert.equal(p.values.listen, '127.0.0.1:15020');
    assert.deepEqual(p.lists.watch, ['/dev/x*', '/dev/y*']);
  });

  it('reads durations in ms, s and m', () => {
    assert.deepEqual(['500ms', '10s', '1.5s', '2m', '24h'].map((t) => durationMs('x', t)), [500, 10_000, 1500, 120_000, 86_400_000]);
  });

  it('reads a list of replicas\' addresses, each checked', () => {
    const specs: FlagSpec[] = [{ name: 'control-plane', kind: 'addresses', default: '127.0.0.1:15010', help: '' }];
    assert.equal(parseFlags('sidecar', ['--control-plane', '10.0.0.1:15010,cp-b.example:15010'], specs, {}).values['control-plane'], '10.0.0.1:15010,cp-b.example:15010');
    assert.throws(() => parseFlags('sidecar', ['--control-plane', '10.0.0.1:15010,nowhere'], specs, {}), /flag --control-plane: "nowhere" is not host:port/);
  });

  it('a flag beats its environment variable', () => {
    const p = parseFlags('agent', ['--host-id', 'a'], SPECS, { DEVICEMESH_HOST_ID: 'b' });
    assert.equal(p.values['host-id'], 'a');
  });

  const bad: [string, string[], RegExp][] = [
    ['unknown flag', ['--host-id', 'a', '--colour', 'red'], /unknown flag --colour for "devicemesh agent"/],
    ['missing value', ['--host-id'], /flag --host-id needs a value/],
    ['value that looks like a flag', ['--host-id', '--listen'], /flag --host-id needs a value/],
    ['missing required flag', [], /flag --host-id is required \(or set DEVICEMESH_HOST_ID\)/],
    ['bad address', ['--host-id', 'a', '--listen', 'nowhere'], /flag --listen: "nowhere" is not host:port/],
    ['port out of range', ['--host-id', 'a', '--listen', '127.0.0.1:70000'], /port 70000 is out of range/],
    ['duration without a unit', ['--host-id', 'a', '--drain-timeout', '10'], /flag --drain-timeout: "10" is not a duration like 500ms, 10s, 2m or 24h/],
    ['negative duration', ['--host-id', 'a', '--drain-timeout', '-1s'], /flag --drain-timeout needs a value/],
  ];
  for (const [what, args, pattern] of bad) {
    it(`refuses ${what} with a clear error`, () => {
      assert.throws(() => parseFlags('agent', args, SPECS, {}), (err: unknown) => err instanceof ValidationError && pattern.test(err.message));
    });
  }
});
