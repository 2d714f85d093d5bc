import { strict as assert } from 'node:assert';
import { cli, freePort } from '../helpers/processes';

/** Every process and command ends with one line and a non-zero exit on bad input. */
describe('e2e: the devicemesh CLI on bad input', function () {
  this.timeout(60_000);

  const oneLine = (args: string[], code: number, pattern: RegExp, env: NodeJS.ProcessEnv = {}): void => {
    const r = cli(args, env);
    assert.equal(r.code, code, `exit ${r.code} for ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, `not one line: ${r.stderr}`);
  };

  it('refuses an unknown command', () => oneLine(['frobnicate'], 2, /^devicemesh: unknown command "frobnicate"/));
  it('refuses an unknown flag', () => oneLine(['agent', '--host-id', 'gw1', '--bogus', 'x'], 2, /unknown flag --bogus for "devicemesh agent"/));
  it('refuses a missing required flag', () => oneLine(['sidecar'], 2, /flag --workload-id is required \(or set DEVICEMESH_WORKLOAD_ID\)/));
  it('refuses a bad address, also from the environment', () => {
    oneLine(['control-plane', '--listen', 'nowhere'], 2, /flag --listen: "nowhere" is not host:port/);
    oneLine(['control-plane'], 2, /flag --listen: "nowhere" is not host:port/, { DEVICEMESH_LISTEN: 'nowhere' });
  });
  it('refuses an unknown simulated device', () => oneLine(['agent', '--host-id', 'gw1', '--simulate', 'toaster'], 2, /--simulate: "toaster" is not one of modem/));
  it('refuses Kubernetes flags without --kubernetes', () => oneLine(['control-plane', '--kubeconfig', '/tmp/kc'], 2, /flag --kubeconfig needs --kubernetes/));
  it('refuses a file it cannot read', () => oneLine(['apply', '-f', '/nonexistent/x.yaml'], 2, /cannot read \/nonexistent\/x\.yaml/));
  it('refuses get of an unknown resource', () => oneLine(['get', 'widgets'], 2, /usage: devicemesh get endpoints\|bindings\|mappings\|proxies/));
  it('says when the control plane is unreachable', async () => {
    const port = await freePort();
    oneLine(['get', 'endpoints', '--control-plane', `127.0.0.1:${port}`, '--insecure'], 1, new RegExp(`control plane at 127\\.0\\.0\\.1:${port} is unreachable`));
  });
  it('says which credential is missing, in one line', async () => {
    const port = await freePort();
    oneLine(['get', 'endpoints', '--control-plane', `127.0.0.1:${port}`], 2, /give --ca-file/);
    oneLine(['get', 'endpoints', '--control-plane', `127.0.0.1:${port}`, '--ca-file', '/nonexistent/ca.crt'], 2, /--ca-file: cannot read \/nonexistent\/ca.crt/);
    oneLine(['token', 'create', '--control-plane', `127.0.0.1:${port}`, '--insecure'], 2, /exactly one of --host ID or --workload ID/);
  });
  it('prints help', () => {
    const r = cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /apply -f FILE/);
    const agent = cli(['agent', '--help']);
    assert.match(agent.stdout, /--watch .*DEVICEMESH_WATCH/);
  });
});
