import { strict as assert } from 'node:assert';
import * as fc from 'fast-check';
import { stringify } from 'yaml';
import { CONFIG_FLAG, parseConfigFile } from '../../../cli/config-file';
import { type FlagSpec, parseFlags } from '../../../cli/flags';
import { ValidationError } from '../../../src/errors';

const SPECS: FlagSpec[] = [
  { name: 'host-id', kind: 'string', required: true, help: '' },
  { name: 'listen', kind: 'address', default: '127.0.0.1:15020', help: '' },
  { name: 'watch', kind: 'list', help: '' },
  { name: 'drain-timeout', kind: 'duration', default: '10s', help: '' },
  CONFIG_FLAG,
];

/** parseFlags with the given files instead of the disk. */
function parseWith(files: Record<string, string>, args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof parseFlags> {
  return parseFlags('agent', args, SPECS, env, (path) => {
    const text = files[path];
    if (text === undefined) throw new ValidationError('', `cannot read config file ${path}: ENOENT`);
    return text;
  });
}

describe('cli config files', () => {
  it('reads every flag from the file, with the same keys as the flags', () => {
    const file = 'host-id: gw1\nlisten: 0.0.0.0:1\nwatch: [/dev/a*, "hid:/dev/hidraw*"]\ndrain-timeout: 2s\n';
    const p = parseWith({ '/etc/a.yaml': file }, ['--config', '/etc/a.yaml']);
    assert.equal(p.values['host-id'], 'gw1');
    assert.equal(p.values.listen, '0.0.0.0:1');
    assert.deepEqual(p.lists.watch, ['/dev/a*', 'hid:/dev/hidraw*']);
    assert.equal(p.values['drain-timeout'], '2s');
  });

  it('flags and environment variables win over the file; the file wins over defaults', () => {
    const files = { f: 'host-id: from-file\nlisten: 10.0.0.1:1\nwatch: /dev/file*\ndrain-timeout: 3s\n' };
    const p = parseWith(files, ['--config=f', '--host-id', 'from-flag'], { DEVICEMESH_LISTEN: '10.0.0.2:2', DEVICEMESH_WATCH: '/dev/env*' });
    assert.equal(p.values['host-id'], 'from-flag');
    assert.equal(p.values.listen, '10.0.0.2:2');
    assert.deepEqual(p.lists.watch, ['/dev/env*']);
    assert.equal(p.values['drain-timeout'], '3s');
    const flagList = parseWith(files, ['--config', 'f', '--watch', '/dev/flag*']);
    assert.deepEqual(flagList.lists.watch, ['/dev/flag*']);
    const defaults = parseWith({ f: 'host-id: a\n' }, ['--config', 'f']);
    assert.equal(defaults.values.listen, '127.0.0.1:15020');
  });

  it('takes the file from DEVICEMESH_CONFIG too', () => {
    const p = parseWith({ g: 'host-id: gw7\n' }, [], { DEVICEMESH_CONFIG: 'g' });
    assert.equal(p.values['host-id'], 'gw7');
  });

  it('checks the file\'s values as it checks flags', () => {
    assert.throws(() => parseWith({ f: 'host-id: a\nlisten: nowhere\n' }, ['--config', 'f']), /flag --listen: "nowhere" is not host:port/);
    assert.throws(() => parseWith({ f: 'host-id: a\ndrain-timeout: 10\n' }, ['--config', 'f']), /not a duration/);
  });

  it('reads numbers and booleans as the text a flag would get; an empty file sets nothing', () => {
    assert.deepEqual(parseConfigFile('host-id: 42\nwatch: [7, true]\n', 'f', 'agent', SPECS), { values: { 'host-id': '42' }, lists: { watch: ['7', 'true'] } });
    assert.deepEqual(parseConfigFile('', 'f', 'agent', SPECS), { values: {}, lists: {} });
    assert.deepEqual(parseConfigFile('# only a comment\n', 'f', 'agent', SPECS), { values: {}, lists: {} });
  });

  const bad: [string, string, RegExp][] = [
    ['an unknown key', 'host-id: a\ncolour: red\n', /^config file f: unknown key "colour" for "devicemesh agent"/],
    ['the config key itself', 'config: other.yaml\n', /unknown key "config"/],
    ['malformed YAML', 'host-id: [a\n', /^config file f: invalid YAML at line \d+, column \d+: /],
    ['a duplicate key', 'host-id: a\nhost-id: b\n', /^config file f: invalid YAML.*unique/i],
    ['a list at the top', '- a\n- b\n', /^config file f: must be a mapping of flag names to values$/],
    ['a scalar at the top', 'just text\n', /must be a mapping of flag names to values/],
    ['a key without a value', 'host-id:\n', /key "host-id" has no value/],
    ['a mapping as a value', 'host-id: { a: 1 }\n', /key "host-id" has a mapping/],
    ['a list for a single flag', 'listen: [a, b]\n', /key "listen" has a list/],
    ['a nested list item', 'watch: [[a]]\n', /key "watch\[0\]" has a list/],
  ];
  for (const [what, text, pattern] of bad) {
    it(`refuses ${what} with a one-line error`, () => {
      assert.throws(
        () => parseConfigFile(text, 'f', 'agent', SPECS),
        (err: unknown) => err instanceof ValidationError && pattern.test(err.message) && !err.message.includes('\n'),
      );
    });
  }

  it('refuses a file it cannot read, naming it', () => {
    assert.throws(() => parseWith({}, ['--config', '/nope.yaml']), /cannot read config file \/nope\.yaml/);
    assert.throws(() => parseFlags('agent', ['--config', '/nonexistent/x.yaml'], SPECS, {}), /^ValidationError: cannot read config file \/nonexistent\/x\.yaml/);
  });

  it('round-trips any settings written as YAML (property)', () => {
    const text = fc.string({ minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(fc.record({ 'host-id': text, watch: fc.array(text, { maxLength: 4 }) }, { requiredKeys: [] }), (settings) => {
        const parsed = parseConfigFile(stringify(settings), 'f', 'agent', SPECS);
        assert.deepEqual(parsed.values, settings['host-id'] === undefined ? {} : { 'host-id': settings['host-id'] });
        assert.deepEqual(parsed.lists, settings.watch === undefined ? {} : { watch: settings.watch });
      }),
    );
  });

  it('never throws anything but a ValidationError on arbitrary text (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (input) => {
        try {
          parseConfigFile(input, 'f', 'agent', SPECS);
        } catch (err) {
          assert.ok(err instanceof ValidationError, String(err));
          assert.ok(!err.message.includes('\n'));
        }
      }),
    );
  });
});
