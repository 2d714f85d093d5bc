import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, MeshProcess, REPO_ROOT, waitFor } from '../helpers/processes';

/** Debian's python: its standard library's pty module puts the demo on a real terminal. */
const PYTHON = '/usr/bin/python3';
const PTY_RUN = path.join(REPO_ROOT, 'test', 'tools', 'pty_run.py');
const ANSI = /\x1b\[[0-9;]*m/g;
const PRETTY_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): (control-plane|agent|sidecar): \S/;

async function demoFlags(dataDir: string): Promise<string[]> {
  const flag = async (name: string): Promise<string[]> => [`--${name}`, `127.0.0.1:${await freePort()}`];
  return [
    'demo', '--data-dir', dataDir,
    ...(await flag('virtual-listen')), ...(await flag('control-plane-listen')), ...(await flag('control-plane-admin')),
    ...(await flag('agent-listen')), ...(await flag('agent-admin')), ...(await flag('sidecar-admin')),
  ];
}

const lines = (text: string): string[] => text.split(/\r?\n/).filter((l) => l.trim() !== '');

describe('e2e: the demo at a terminal and in a pipe', function () {
  this.timeout(90_000);
  let dir: string;
  let demo: MeshProcess | undefined;

  beforeEach(function () {
    if (!fs.existsSync(PYTHON)) {
      console.log(`      skipped: ${PYTHON} is missing (Debian's python3, for its pty module; bash scripts/install-test-deps.sh)`);
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-demo-tty-'));
  });
  afterEach(async () => {
    await demo?.stop();
    demo = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('on a terminal: the banner first, naming the file the mesh logs go to (JSON lines there)', async () => {
    demo = MeshProcess.start('demo-tty', await demoFlags(dir), { DEVICEMESH_LOG_LEVEL: 'info' }, [PYTHON, PTY_RUN]);
    await waitFor('the banner', () => demo?.output().includes('Stop with Ctrl-C.'), 60_000);
    const shown = lines(demo.output().replace(ANSI, ''));
    assert.equal(shown[0], 'devicemesh demo is running:', `the banner comes first:\n${demo.output()}`);
    const file = /The mesh's logs: +(\S+)/.exec(demo.output())?.[1];
    assert.equal(file, path.join(dir, 'devicemesh-demo.log'));
    assert.ok(!shown.some((l) => PRETTY_LINE.test(l) || l.startsWith('{')), `no log line on the terminal:\n${demo.output()}`);
    const logged = lines(fs.readFileSync(file, 'utf8'));
    assert.ok(logged.length > 5, 'the mesh logged to the file');
    for (const l of logged) assert.equal(typeof (JSON.parse(l) as { msg: unknown }).msg, 'string', l);
    assert.ok(logged.some((l) => l.includes('"msg":"control plane serving"')));
  });

  it('on a terminal with --verbose: one short coloured line per event, then the banner', async () => {
    demo = MeshProcess.start('demo-tty-verbose', [...(await demoFlags(dir)), '--verbose'], { DEVICEMESH_LOG_LEVEL: 'info' }, [PYTHON, PTY_RUN]);
    await waitFor('the banner', () => demo?.output().includes('Stop with Ctrl-C.'), 60_000);
    const raw = demo.output();
    assert.match(raw, /\x1b\[3\dm/, 'coloured');
    const shown = lines(raw.replace(ANSI, ''));
    const bannerAt = shown.indexOf('devicemesh demo is running:');
    assert.ok(bannerAt > 0, raw);
    const logLines = shown.slice(0, bannerAt);
    for (const l of logLines) assert.match(l, PRETTY_LINE);
    assert.ok(logLines.some((l) => /INFO: control-plane: control plane serving \{/.test(l)), raw);
    assert.ok(logLines.some((l) => /INFO: sidecar: virtual device listening/.test(l)), raw);
    assert.match(shown.join('\n'), /The mesh's logs follow on stderr/);
  });

  it('piped with --verbose: every log line on stderr is JSON; stdout has the banner', async () => {
    demo = MeshProcess.start('demo-piped', [...(await demoFlags(dir)), '--verbose'], { DEVICEMESH_LOG_LEVEL: 'info' });
    const stderr: string[] = [];
    let stdout = '';
    demo.child.stderr?.on('data', (c: Buffer) => stderr.push(c.toString()));
    demo.child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    await waitFor('the banner', () => stdout.includes('Stop with Ctrl-C.'), 60_000);
    const logged = lines(stderr.join(''));
    assert.ok(logged.length > 5);
    for (const l of logged) {
      assert.doesNotMatch(l, ANSI);
      assert.equal((JSON.parse(l) as { name: string }).name, 'devicemesh', l);
    }
    assert.equal(lines(stdout)[0], 'devicemesh demo is running:');
  });

  it('--log-format pretty in a pipe: readable lines without colour; a bad word is a usage error', async () => {
    demo = MeshProcess.start('demo-piped-pretty', [...(await demoFlags(dir)), '--verbose', '--log-format', 'pretty'], { DEVICEMESH_LOG_LEVEL: 'info' });
    let stderr = '';
    demo.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor('the banner', () => demo?.output().includes('Stop with Ctrl-C.'), 60_000);
    assert.doesNotMatch(stderr, ANSI);
    for (const l of lines(stderr)) assert.match(l, PRETTY_LINE);
    await demo.stop();
    const bad = MeshProcess.start('demo-bad-format', ['demo', '--log-format', 'xml']);
    assert.equal(await bad.exited, 2);
    assert.match(bad.output(), /^devicemesh: --log-format: "xml" is not one of auto, json, pretty$/m);
  });
});
