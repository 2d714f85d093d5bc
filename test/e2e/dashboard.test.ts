import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { AppClient } from '../helpers/app-client';
import { EchoResponder } from '../helpers/echo-responder';
import { cli, type CliResult, freePort, MeshProcess, OUTPUT_DIR, REPO_ROOT, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

const CHROMIUM = '/usr/bin/chromium';

type Role = 'control-plane' | 'agent' | 'sidecar';

/** Every process start and CLI call of this file goes through these two, to adapt in one place. */
function startProcess(role: Role, args: readonly string[]): MeshProcess {
  return MeshProcess.start(`e2e-dashboard-${role}`, [role, ...args]);
}

function runCli(args: readonly string[]): CliResult {
  return cli([...args]);
}

/** The chart's latest bytes/s and point count, as the page records them on its element. */
async function chartState(page: Page, binding: string): Promise<{ last: number; points: number }> {
  const box = page.locator(`[data-chart="${binding}"]`);
  return { last: Number(await box.getAttribute('data-last')), points: Number(await box.getAttribute('data-points')) };
}

/**
 * Issue 8's dashboard in a real browser (Debian's chromium, headless, driven by playwright-core)
 * against the control plane, agent and sidecar processes: devices with live presence, bindings,
 * proxies, and a binding's bandwidth chart that moves with traffic.
 */
describe('e2e: the control plane dashboard in a browser', function () {
  this.timeout(120_000);

  let tmp: string;
  let cp: string;
  let cpAdmin: string;
  let virtualPort: number;
  let stays: PtyPair;
  let goes: PtyPair;
  let echo: EchoResponder;
  let browser: Browser | undefined;
  const processes: MeshProcess[] = [];

  before(async function () {
    if (!haveSocat() || !fs.existsSync(CHROMIUM)) {
      console.log(`    skipped: needs socat and ${CHROMIUM} (the README test command installs both)`);
      this.skip();
    }
    // `npx tsc -p .` does not build the browser code: the test builds what the control plane serves.
    const built = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'build-dashboard.js')], { encoding: 'utf8' });
    assert.equal(built.status, 0, `building the dashboard failed: ${built.stdout}${built.stderr}`);

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-dashboard-'));
    cp = `127.0.0.1:${await freePort()}`;
    cpAdmin = `127.0.0.1:${await freePort()}`;
    virtualPort = await freePort();
    stays = await PtyPair.create(path.join(tmp, 'ttyStays'), path.join(tmp, 'peerStays'));
    goes = await PtyPair.create(path.join(tmp, 'ttyGoes'), path.join(tmp, 'peerGoes'));
    echo = await EchoResponder.open(stays.peer);
    processes.push(startProcess('control-plane', ['--listen', cp, '--admin', cpAdmin, '--data-dir', path.join(tmp, 'data')]));
    processes.push(
      startProcess('agent', [
        '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${await freePort()}`,
        '--watch', path.join(tmp, 'tty*'), '--admin', `127.0.0.1:${await freePort()}`,
      ]),
    );
    processes.push(startProcess('sidecar', ['--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${await freePort()}`]));
    await waitFor('both ptys in the register', () => {
      const r = runCli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as { endpoints: Array<{ state: string }> }).endpoints.filter((e) => e.state === 'ENDPOINT_STATE_PRESENT').length === 2;
    }, 20_000);
    const file = path.join(tmp, 'binding.yaml');
    fs.writeFileSync(
      file,
      `kind: Binding\nname: dash-echo\nworkload: app1\ndevice: { host: gw1, path: ${stays.device} }\n` +
        `virtual: { name: dash-echo, protocol: raw, listen: 127.0.0.1:${virtualPort} }\npolicy: { sharing: exclusive }\n`,
    );
    const applied = runCli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor('the virtual device to listen', () => AppClient.connect(virtualPort).then((c) => (c.close(), true), () => false), 15_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await Promise.all(processes.map((p) => p.stop()));
    await echo?.close();
    await stays?.remove();
    await goes?.remove();
  });

  it('shows devices live, marks an unplugged one absent within 2 s, and moves a binding’s chart with traffic', async () => {
    const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    try {
      await page.goto(`http://${cpAdmin}/`);
      await page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
      await page.locator(`[data-device="${goes.device}"][data-state="PRESENT"]`).waitFor({ timeout: 10_000 });
      await page.locator(`[data-device="${stays.device}"][data-state="PRESENT"]`).waitFor();
      await page.locator('tr[data-binding="dash-echo"] .badge[data-state="MAPPED"]').waitFor({ timeout: 10_000 });
      await page.locator('tr[data-proxy="agent/gw1"] .badge[data-state="SYNCED"]').waitFor({ timeout: 10_000 });
      await page.locator('tr[data-proxy="sidecar/app1"] .badge[data-state="SYNCED"]').waitFor({ timeout: 10_000 });

      await goes.remove();
      await page.locator(`[data-device="${goes.device}"][data-state="ABSENT"]`).waitFor({ timeout: 2000 });
      assert.equal(await page.locator(`[data-device="${stays.device}"]`).getAttribute('data-state'), 'PRESENT');

      await page.locator('[data-chart="dash-echo"] canvas').first().waitFor({ timeout: 10_000 });
      const idle = await chartState(page, 'dash-echo');
      assert.equal(idle.last, 0, 'no traffic yet: the chart is at 0');
      const app = await AppClient.connect(virtualPort);
      const chunk = Buffer.alloc(2048, 0x55);
      const seen: number[] = [];
      try {
        const moved = await waitFor('the chart to show the traffic', async () => {
          app.socket.write(chunk);
          const now = await chartState(page, 'dash-echo');
          seen.push(now.last);
          return now.last > 0 && now.points > idle.points ? now : undefined;
        }, 15_000);
        assert.ok(moved.last > 0);
        await page.screenshot({ path: path.join(OUTPUT_DIR, 'dashboard.png'), fullPage: true });
      } finally {
        app.close();
      }
      console.log(`      chart bytes/s while sending: ${seen.filter((v) => v > 0).slice(0, 5).map(Math.round).join(', ')} …; screenshot in test-output/dashboard.png`);
      assert.deepEqual(errors, [], 'no script errors on the page');
    } finally {
      await page.close();
    }
  });
});
