import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppClient } from '../helpers/app-client';
import { type ComposePlan, composeAsProcesses, type ServicePlan } from '../helpers/compose-as-processes';
import { cli, httpGet, MeshProcess, REPO_ROOT, waitFor } from '../helpers/processes';

/** Starts one mesh process; the one place to adapt when the processes' flags change. */
function startProcess(name: string, args: string[]): MeshProcess {
  return MeshProcess.start(name, args);
}

/** One run of a one-shot service: the devicemesh CLI, or its own entrypoint in the image's working directory (the repository here). */
function runJob(service: ServicePlan): boolean {
  if (!service.entrypoint) return cli(service.args).code === 0;
  const [command, ...args] = [...service.entrypoint, ...service.args] as [string, ...string[]];
  const r = spawnSync(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}` },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return r.status === 0;
}

/**
 * docker-compose.yml's default services, run as processes from the same commands and config
 * files (no Docker engine here): the test plays the busybox app, which talks to 127.0.0.1:7001.
 */
describe('e2e: the docker-compose topology as processes', function () {
  this.timeout(90_000);
  let dir: string;
  let plan: ComposePlan;
  const running: MeshProcess[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-compose-'));
    plan = await composeAsProcesses(dir, 'devicemesh:0.1.0');
    assert.deepEqual(plan.services.map((s) => s.name), ['control-plane', 'bindings', 'tokens', 'agent-simulated', 'app-sidecar']);
    for (const service of plan.services) {
      if (service.job) {
        // restart: on-failure — the job runs again until the control plane takes it.
        await waitFor(`the ${service.name} job to succeed`, () => runJob(service), 30_000);
        continue;
      }
      running.push(startProcess(`compose-${service.name}`, service.args));
      if (service.name === 'control-plane') {
        await waitFor('the control plane to be healthy', async () => (await httpGet(`http://127.0.0.1:${plan.port(15000)}/ready`)).status === 200, 30_000);
      }
    }
  });

  after(async () => {
    await Promise.all(running.map((p) => p.stop()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the app reaches the simulated modem on its 127.0.0.1:7001 and data moves both ways', async () => {
    const app = await waitFor('the sidecar to serve 127.0.0.1:7001', () => AppClient.connect(plan.port(7001)).catch(() => undefined), 30_000);
    try {
      app.socket.write('AT\r');
      assert.equal((await app.take(9)).toString('latin1'), 'AT\r\r\nOK\r\n');
      app.socket.write('ATI\r');
      await waitFor('the ATI answer', () => app.received >= 20);
      assert.match((await app.take(app.received)).toString('latin1'), /devicemesh simulated modem/);
    } finally {
      app.close();
    }
  });

  it('the hardware binding waits for its device (its agent is in the hardware profile)', () => {
    const r = cli(['get', 'bindings', '--control-plane', `127.0.0.1:${plan.port(15010)}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /app1-sim\s+app1\s+gw-sim:sim:modem0\s+raw:\/\/127\.0\.0\.1:\d+\s+MAPPED/);
    assert.match(r.stdout, /app1-modem\s+app1\s+gw1:\/dev\/ttyUSB0/);
    assert.doesNotMatch(r.stdout, /app1-modem[^\n]*MAPPED/);
  });
});
