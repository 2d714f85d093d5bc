import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { AppClient } from '../helpers/app-client';
import { cli, freePort, MeshProcess, REPO_ROOT, waitFor } from '../helpers/processes';

/** `npm start` is the quick start: it must bring up the whole mesh and a working modem. */
describe('e2e: npm start (the demo)', function () {
  this.timeout(60_000);
  let demo: MeshProcess;
  let ports: Record<string, number>;

  before(async () => {
    ports = {
      virtual: await freePort(),
      cp: await freePort(),
      cpAdmin: await freePort(),
      agent: await freePort(),
      agentAdmin: await freePort(),
      sidecarAdmin: await freePort(),
    };
    // The demo's flags come from the DEVICEMESH_* environment, as every flag can.
    const child = spawn('npm', ['start', '--silent'], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        DEVICEMESH_VIRTUAL_LISTEN: `127.0.0.1:${ports.virtual}`,
        DEVICEMESH_CONTROL_PLANE_LISTEN: `127.0.0.1:${ports.cp}`,
        DEVICEMESH_CONTROL_PLANE_ADMIN: `127.0.0.1:${ports.cpAdmin}`,
        DEVICEMESH_AGENT_LISTEN: `127.0.0.1:${ports.agent}`,
        DEVICEMESH_AGENT_ADMIN: `127.0.0.1:${ports.agentAdmin}`,
        DEVICEMESH_SIDECAR_ADMIN: `127.0.0.1:${ports.sidecarAdmin}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    demo = new MeshProcess('e2e-demo', child);
    await waitFor('the demo to print where to connect', () => demo.output().includes('Connect to the modem'), 45_000);
  });

  after(async () => {
    if (demo?.child.pid) {
      // npm runs the demo as its child: signal the whole group.
      try {
        process.kill(-demo.child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await Promise.race([demo.exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  });

  it('prints the address, and the simulated modem answers AT commands through the mesh', async () => {
    assert.match(demo.output(), new RegExp(`nc 127\\.0\\.0\\.1 ${ports.virtual}`));
    const app = await AppClient.connect(ports.virtual);
    app.socket.write('AT\r');
    const reply = await app.take(9);
    assert.equal(reply.toString('latin1'), 'AT\r\r\nOK\r\n');
    app.socket.write('ATI\r');
    await waitFor('the ATI answer', () => app.received >= 20);
    const info = (await app.take(app.received)).toString('latin1');
    assert.match(info, /devicemesh simulated modem/);
    app.close();
  });

  it('is visible through the CLI: endpoint, binding and mapping', () => {
    const cp = `127.0.0.1:${ports.cp}`;
    // The demo runs secure and prints where its CA bundle is: reads from loopback need nothing more.
    const caFile = /--ca-file (\S+)/.exec(demo.output())?.[1];
    assert.ok(caFile, 'the demo prints its --ca-file');
    const env = { DEVICEMESH_CA_FILE: caFile };
    const endpoints = cli(['get', 'endpoints', '--control-plane', cp], env);
    assert.equal(endpoints.code, 0, endpoints.stderr);
    assert.match(endpoints.stdout, /demo-gw\/sim:modem0\s+SERIAL\s+sim:modem0\s+PRESENT/);
    const bindings = cli(['get', 'bindings', '--control-plane', cp], env);
    assert.match(bindings.stdout, /demo-modem\s+demo-app\s+demo-gw:sim:modem0\s+raw:\/\/127\.0\.0\.1:\d+\s+MAPPED/);
    const proxies = cli(['get', 'proxies', '--control-plane', cp], env);
    assert.match(proxies.stdout, /sidecar\/demo-app\s+devicemesh\.v1\.Mapping\s+\d+\s+\d+\s+SYNCED/);
    assert.match(proxies.stdout, /agent\/demo-gw\s+devicemesh\.v1\.Mapping\s+\d+\s+\d+\s+SYNCED/);
  });
});
