import { strict as assert } from 'node:assert';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AppClient } from '../helpers/app-client';
import { cli, createToken, freePort, MeshProcess, REPO_ROOT, waitFor } from '../helpers/processes';

const execFileAsync = promisify(execFile);

const PYTHON = '/usr/bin/python3';
/** Writes up to 1 MiB without reading (a 4 KiB receive buffer), then closes. */
const HOG = path.join(REPO_ROOT, 'test', 'tools', 'hog_client.py');
/** An echoing device that, once, takes nothing and sends nothing for a while. */
const STALLING_ECHO = path.join(REPO_ROOT, 'test', 'tools', 'stalling_echo.py');
/**
 * The device echoes this much, then stalls: the echo lies unread in the hog's socket (so its close
 * is a reset, as in the issue) and fits the sidecar's socket buffer, so no pending write toward the
 * hog reveals that it has gone…
 */
const STALL_AFTER = 16 * 1024;
/** …for this long: well past the hog's close (at most 3.5 s) and the next app's 1 s handover window. */
const STALL_SECONDS = 10;

/** Starts a stalling echo device linked at `link`; resolves once the link is there. */
function stallingEcho(link: string): Promise<ChildProcess> {
  const child = spawn(PYTHON, [STALLING_ECHO, link, String(STALL_AFTER), String(STALL_SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`stalling_echo.py exited with ${code}`)));
  });
}

/**
 * Issue 15, finding 3: an app that writes 1 MiB to an echoing device without reading and then
 * goes away must not leave the agent's session open holding the exclusive device, even while the
 * device takes and sends nothing (so no byte toward the gone app reveals it). The next app's OPEN
 * waits at most 1 s for the holder to leave (the agent's handover window), so its being admitted
 * and its bytes coming back (after the stall) proves the device was free within 1 s of the
 * disconnect.
 */
describe('e2e: a session whose app is gone frees its exclusive device (raw and RFC 2217)', function () {
  this.timeout(180_000);

  let tmp: string;
  let cp: string;
  let ports: Record<'cp' | 'agent' | 'agentAdmin' | 'sidecarAdmin' | 'raw' | 'rfc2217', number>;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  let sidecar: MeshProcess;
  const devices: ChildProcess[] = [];
  const links: string[] = [];

  before(async function () {
    if (spawnSync(PYTHON, ['-c', 'import pty, tty'], { stdio: 'ignore' }).status !== 0) {
      console.log(`    skipped: ${PYTHON} (Debian's python3) is not installed (bash scripts/install-test-deps.sh)`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-wedge-'));
    ports = { cp: await freePort(), agent: await freePort(), agentAdmin: await freePort(), sidecarAdmin: await freePort(), raw: await freePort(), rfc2217: await freePort() };
    cp = `127.0.0.1:${ports.cp}`;
    for (const name of ['Raw', 'Telnet']) {
      const link = path.join(tmp, `tty${name}`);
      links.push(link);
      devices.push(await stallingEcho(link));
    }
    controlPlane = MeshProcess.start('e2e-wedge-control-plane', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${await freePort()}`, '--data-dir', path.join(tmp, 'data')]);
    // Tokens made here with a generous deadline: a CLI call can take seconds on a loaded machine.
    const tokenFile = async (kind: 'host' | 'workload', id: string): Promise<string> => {
      const file = path.join(tmp, `${kind}-${id}.token`);
      fs.writeFileSync(file, await createToken(cp, kind, id, 90_000), { mode: 0o600 });
      return file;
    };
    agent = MeshProcess.start('e2e-wedge-agent', [
      'agent', '--token-file', await tokenFile('host', 'gw1'), '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${ports.agent}`, '--watch', path.join(tmp, 'tty*'), '--admin', `127.0.0.1:${ports.agentAdmin}`,
    ]);
    sidecar = MeshProcess.start('e2e-wedge-sidecar', ['sidecar', '--token-file', await tokenFile('workload', 'app1'), '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${ports.sidecarAdmin}`]);
    const file = path.join(tmp, 'bindings.yaml');
    fs.writeFileSync(
      file,
      [
        ['raw', links[0], ports.raw],
        ['rfc2217', links[1], ports.rfc2217],
      ]
        .map(([protocol, device, port]) => `kind: Binding\nname: wedge-${protocol}\nworkload: app1\ndevice: { host: gw1, path: ${device} }\nvirtual: { name: ${protocol}, protocol: ${protocol}, listen: 127.0.0.1:${port} }\npolicy: { sharing: exclusive }\n`)
        .join('---\n'),
    );
    await waitFor('both ptys in the register', () => {
      const r = cli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as { endpoints: Array<{ state: string }> }).endpoints.filter((e) => e.state === 'ENDPOINT_STATE_PRESENT').length === 2;
    }, 90_000);
    const applied = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);
    for (const port of [ports.raw, ports.rfc2217]) {
      await waitFor('the virtual devices to listen', () => AppClient.connect(port).then((c) => (c.close(), true), () => false), 30_000);
    }
  });

  after(async () => {
    await Promise.all([sidecar?.stop(), agent?.stop(), controlPlane?.stop()]);
    for (const device of devices) device.kill();
  });

  for (const protocol of ['raw', 'rfc2217'] as const) {
    it(`${protocol}: 1 MiB written without reading, then a close: the device is free within 1 s and the next app's bytes round-trip`, async () => {
      const port = protocol === 'raw' ? ports.raw : ports.rfc2217;
      const hog = await execFileAsync(PYTHON, [HOG, String(port)], { timeout: 30_000 });
      const sent = Number(hog.stdout.trim());
      console.log(`      the hog wrote ${sent} bytes of 1 MiB without reading, then closed`);
      assert.ok(sent > 0);
      const next = await AppClient.connect(port);
      try {
        const marker = Buffer.from(`next app ${protocol} ${Date.now()}\r\n`);
        next.socket.write(marker);
        // The hog's bytes still in the device come first; the marker must come back after them.
        await waitFor('the next app\'s bytes back', () => (next.closed ? Promise.reject(new Error('the next app was refused: the device is still held')) : next.contains(marker)), (STALL_SECONDS + 15) * 1000);
      } finally {
        next.close();
      }
    });
  }
});
