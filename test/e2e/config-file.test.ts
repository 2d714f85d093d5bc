import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli, createToken, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';

/** Starts one mesh process; the one place to adapt when the processes' flags change. */
function startProcess(name: string, args: string[]): MeshProcess {
  return MeshProcess.start(name, args);
}

/** Every process starts from a YAML file with its flags' keys; bad files end in one line. */
describe('e2e: processes started from config files', function () {
  this.timeout(60_000);
  let dir: string;
  const running: MeshProcess[] = [];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devicemesh-config-'));
  });

  after(async () => {
    await Promise.all(running.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  it('runs a control plane, an agent and a sidecar from config files alone', async () => {
    const [cp, cpAdmin, agentPort, agentAdmin, sidecarAdmin] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const cpFile = write('cp.yaml', `listen: 127.0.0.1:${cp}\nadmin: 127.0.0.1:${cpAdmin}\ndata-dir: ${path.join(dir, 'data')}\nadapt-interval: 2s\n`);
    // Credentials come from the files too: each member's join token file, filled once the control plane can make tokens.
    const [agentToken, sidecarToken] = [path.join(dir, 'agent.token'), path.join(dir, 'sidecar.token')];
    const agentFile = write(
      'agent.yaml',
      `host-id: cfg-gw\ncontrol-plane: 127.0.0.1:${cp}\nlisten: 127.0.0.1:${agentPort}\nadmin: 127.0.0.1:${agentAdmin}\nsimulate: [modem]\n` +
        `token-file: ${agentToken}\n`,
    );
    const sidecarFile = write(
      'sidecar.yaml',
      `workload-id: cfg-app\ncontrol-plane: 127.0.0.1:${cp}\nadmin: 127.0.0.1:${sidecarAdmin}\ntoken-file: ${sidecarToken}\n`,
    );
    running.push(startProcess('config-cp', ['control-plane', '--config', cpFile]));
    running.push(startProcess('config-agent', ['agent', '--config', agentFile]));
    running.push(startProcess('config-sidecar', ['sidecar', '--config', sidecarFile]));
    await waitFor('the control plane to be ready', async () => (await httpGet(`http://127.0.0.1:${cpAdmin}/ready`)).status === 200, 20_000);
    fs.writeFileSync(agentToken, await createToken(`127.0.0.1:${cp}`, 'host', 'cfg-gw'));
    fs.writeFileSync(sidecarToken, await createToken(`127.0.0.1:${cp}`, 'workload', 'cfg-app'));
    const endpoints = await waitFor('the agent from its file to register', () => {
      const r = cli(['get', 'endpoints', '--control-plane', `127.0.0.1:${cp}`]);
      return r.code === 0 && /cfg-gw\/sim:modem0/.test(r.stdout) ? r.stdout : undefined;
    }, 20_000);
    assert.match(endpoints, /cfg-gw\/sim:modem0\s+SERIAL/);
    const proxies = await waitFor('the sidecar from its file to connect', () => {
      const r = cli(['get', 'proxies', '--control-plane', `127.0.0.1:${cp}`]);
      return /sidecar\/cfg-app/.test(r.stdout) ? r.stdout : undefined;
    }, 20_000);
    assert.match(proxies, /sidecar\/cfg-app/);
  });

  it('lets a flag win over the file', async () => {
    const [cpAdmin, other] = await Promise.all([freePort(), freePort()]);
    const file = write('cp2.yaml', `listen: 127.0.0.1:${other}\nadmin: 127.0.0.1:1\ndata-dir: ${path.join(dir, 'data2')}\n`);
    const p = startProcess('config-cp-override', ['control-plane', '--config', file, '--admin', `127.0.0.1:${cpAdmin}`]);
    running.push(p);
    await waitFor('the control plane on the flag\'s admin address', async () => (await httpGet(`http://127.0.0.1:${cpAdmin}/ready`)).status === 200, 20_000);
  });

  const oneLine = (args: string[], pattern: RegExp): void => {
    const r = cli(args);
    assert.equal(r.code, 2, `exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, `not one line: ${r.stderr}`);
  };

  it('refuses an unknown key, malformed YAML and a missing file in one line', () => {
    oneLine(['agent', '--config', write('unknown.yaml', 'host-id: a\ncolour: red\n')], /^devicemesh: config file .*unknown\.yaml: unknown key "colour" for "devicemesh agent"/);
    oneLine(['sidecar', '--config', write('broken.yaml', 'workload-id: [a\n')], /^devicemesh: config file .*broken\.yaml: invalid YAML at line/);
    oneLine(['control-plane', '--config', path.join(dir, 'missing.yaml')], /^devicemesh: cannot read config file .*missing\.yaml/);
  });
});
