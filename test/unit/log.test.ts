import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ValidationError } from '../../src/errors';
import { createLogger, openLogOutput, resolveLogFormat } from '../../src/log';

describe('log output', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-log-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('auto is pretty on a terminal and JSON otherwise; json and pretty are what they say', () => {
    assert.equal(resolveLogFormat('auto', true), 'pretty');
    assert.equal(resolveLogFormat('auto', false), 'json');
    assert.equal(resolveLogFormat('json', true), 'json');
    assert.equal(resolveLogFormat('pretty', false), 'pretty');
  });

  it('refuses any other word with a usage error', () => {
    for (const word of ['', 'JSON', 'text', 'constructor']) {
      assert.throws(() => resolveLogFormat(word, true), (err: unknown) => err instanceof ValidationError && /--log-format: ".*" is not one of auto, json, pretty/.test(err.message));
    }
  });

  it('writes one JSON object per event to a file (auto: a file is no terminal), its directory made', () => {
    const file = path.join(dir, 'sub', 'mesh.log');
    const output = openLogOutput('auto', { file });
    assert.equal(output.format, 'json');
    const log = createLogger('agent', { hostId: 'gw1' }, output);
    log.info({ device: '/dev/ttyUSB0' }, 'device opened');
    log.warn({ error: 'gone' }, 'device removed');
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => [l.level, l.component, l.hostId, l.msg]),
      [
        [30, 'agent', 'gw1', 'device opened'],
        [40, 'agent', 'gw1', 'device removed'],
      ],
    );
  });

  it('pretty: one line per event, component and message first, the fields after it on the same line; no colour off a terminal', () => {
    const file = path.join(dir, 'pretty.log');
    const log = createLogger('sidecar', { workloadId: 'app1' }, openLogOutput('pretty', { file }));
    log.info({ listen: '127.0.0.1:7000' }, 'virtual device listening');
    log.warn({ error: 'connection refused\nby peer' }, 'relay failed');
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0] as string, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: sidecar: virtual device listening \{"workloadId":"app1","listen":"127\.0\.0\.1:7000"\}$/);
    assert.match(lines[1] as string, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: sidecar: relay failed \{"workloadId":"app1","error":"connection refused\\nby peer"\}$/);
    assert.doesNotMatch(lines.join('\n'), /\x1b\[/);
  });
});
