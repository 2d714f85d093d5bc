import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppClient } from '../helpers/app-client';
import { AtResponder } from '../helpers/at-responder';
import { type CollectedSpan, OtlpCollector } from '../helpers/otlp-collector';
import { cli, type CliResult, freePort, httpGet, MeshProcess, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

type Role = 'control-plane' | 'agent' | 'sidecar';

/**
 * Every process start and CLI call of this file goes through these two functions, so that a change
 * in how processes are started (e.g. mTLS certificates) is made in one place.
 */
function startProcess(role: Role, args: readonly string[]): MeshProcess {
  return MeshProcess.start(`e2e-observability-${role}`, [role, ...args]);
}

function runCli(args: readonly string[]): CliResult {
  return cli([...args]);
}

/**
 * The sum of the Prometheus samples of `name` whose labels include every one of `labels`
 * (exact `k="v"` matches); 0 when there is none.
 */
function sample(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== `devicemesh_${name}`) continue;
    const body = match[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) total += Number(match[3]);
  }
  return total;
}

/** One AT command and its answer through the mesh, checked byte for byte. */
async function command(app: AppClient, text: string): Promise<{ sent: number; received: number }> {
  const request = `AT+ECHO=${text}\r`;
  const answer = `\r\n+ECHO: ${text}\r\nOK\r\n`;
  app.socket.write(request, 'latin1');
  const got = await app.take(answer.length);
  assert.equal(got.toString('latin1'), answer);
  return { sent: request.length, received: answer.length };
}

/**
 * Issue 8's acceptance over the real processes: counters on /stats/prometheus of the control plane,
 * the agent and the sidecar match the bytes and commands sent; one connection's command is one
 * trace from the sidecar into the agent, exported by OTLP; `describe binding` and `get proxies`.
 */
describe('e2e: observability (metrics, traces, CLI status)', function () {
  this.timeout(120_000);

  let tmp: string;
  let cp: string;
  let admins: Record<Role, string>;
  let virtualPort: number;
  let collector: OtlpCollector;
  let pty: PtyPair;
  let responder: AtResponder;
  const processes: MeshProcess[] = [];

  const scrape = async (role: Role): Promise<string> => {
    const res = await httpGet(`http://${admins[role]}/stats/prometheus`);
    assert.equal(res.status, 200);
    return res.body;
  };

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (the README test command installs it)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-observability-'));
    collector = await OtlpCollector.start();
    cp = `127.0.0.1:${await freePort()}`;
    admins = {
      'control-plane': `127.0.0.1:${await freePort()}`,
      agent: `127.0.0.1:${await freePort()}`,
      sidecar: `127.0.0.1:${await freePort()}`,
    };
    virtualPort = await freePort();
    pty = await PtyPair.create(path.join(tmp, 'ttyObs'), path.join(tmp, 'peerObs'));
    responder = await AtResponder.open(pty.peer, 1);
    const otlp = ['--otlp-endpoint', collector.endpoint, '--trace-sample-ratio', '1'];
    processes.push(startProcess('control-plane', ['--listen', cp, '--admin', admins['control-plane'], '--data-dir', path.join(tmp, 'data'), ...otlp]));
    processes.push(
      startProcess('agent', [
        '--host-id', 'gw1', '--control-plane', cp, '--listen', `127.0.0.1:${await freePort()}`,
        '--watch', path.join(tmp, 'tty*'), '--admin', admins.agent, ...otlp,
      ]),
    );
    processes.push(startProcess('sidecar', ['--workload-id', 'app1', '--control-plane', cp, '--admin', admins.sidecar, ...otlp]));
    await waitFor('the pty in the register', () => {
      const r = runCli(['get', 'endpoints', '-o', 'json', '--control-plane', cp]);
      return r.code === 0 && (JSON.parse(r.stdout) as { endpoints: Array<{ state: string }> }).endpoints.some((e) => e.state === 'ENDPOINT_STATE_PRESENT');
    }, 20_000);
    const file = path.join(tmp, 'binding.yaml');
    fs.writeFileSync(
      file,
      `kind: Binding
name: obs-at
workload: app1
device: { host: gw1, path: ${pty.device} }
virtual: { name: obs-at, protocol: raw, listen: 127.0.0.1:${virtualPort} }
policy: { sharing: shared, requestTerminator: "\\r", response: { terminator: "OK\\r\\n" }, queueDepth: 16 }
`,
    );
    const applied = runCli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor('the virtual device to listen', () => AppClient.connect(virtualPort).then((c) => (c.close(), true), () => false), 15_000);
  });

  after(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await responder?.close();
    await pty?.remove();
    await collector?.close();
  });

  it('counts the bytes and commands sent on the sidecar, the agent and the control plane', async () => {
    const before = { agent: await scrape('agent'), sidecar: await scrape('sidecar') };
    const binding = { binding: 'obs-at' };
    const app = await AppClient.connect(virtualPort);
    let sent = 0;
    let received = 0;
    const commands = 7;
    try {
      for (let i = 0; i < commands; i++) {
        const r = await command(app, `metrics-${i}`);
        sent += r.sent;
        received += r.received;
      }
    } finally {
      app.close();
    }
    const delta = async (role: 'agent' | 'sidecar', name: string, labels: Readonly<Record<string, string>> = binding): Promise<number> =>
      sample(await scrape(role), name, labels) - sample(before[role], name, labels);

    // The sidecar adds an app connection's bytes when it closes.
    await waitFor('the sidecar to count the connection', async () => (await delta('sidecar', 'bytes_app_to_device_total')) === sent, 10_000);
    assert.equal(await delta('sidecar', 'bytes_app_to_device_total'), sent);
    assert.equal(await delta('sidecar', 'bytes_device_to_app_total'), received);
    assert.equal(await delta('sidecar', 'app_connections_total'), 1);

    assert.equal(await delta('agent', 'bytes_to_device_total'), sent);
    assert.equal(await delta('agent', 'bytes_from_device_total'), received);
    assert.equal(await delta('agent', 'binding_commands_total'), commands);
    assert.equal(await delta('agent', 'commands_total', { outcome: 'answered' }), commands);
    assert.equal(await delta('agent', 'command_seconds_count', {}), commands);
    assert.equal(await delta('agent', 'command_queue_wait_seconds_count', {}), commands);
    assert.equal(await delta('agent', 'command_queue_depth', {}), 0, 'nothing left in the queue');
    const agentText = await scrape('agent');
    assert.equal(sample(agentText, 'devices_present'), 1);
    assert.equal(sample(agentText, 'device_presence_changes_total', { change: 'added' }), 1);
    assert.match(agentText, /^# HELP devicemesh_command_seconds From a command queued to its answer/m);
    assert.match(agentText, /^target_info\{.*service_name="devicemesh-agent"/m);

    const cpText = await scrape('control-plane');
    assert.equal(sample(cpText, 'connected_proxies'), 2);
    assert.equal(sample(cpText, 'bindings'), 1);
    assert.equal(sample(cpText, 'mappings'), 1);
    assert.ok(sample(cpText, 'proxy_acks_total', { node: 'gw1' }) >= 1, 'the agent acknowledged its mapping');
    assert.ok(sample(cpText, 'proxy_acks_total', { node: 'app1' }) >= 1, 'the sidecar acknowledged its mapping');
    assert.ok(sample(cpText, 'xds_pushes_total') >= 2);
    assert.equal(sample(cpText, 'xds_nacks_total'), 0);
  });

  it('makes one command one trace: the sidecar’s span, the agent’s command span under it, queue wait and device time', async () => {
    const app = await AppClient.connect(virtualPort);
    try {
      await command(app, 'traced');
    } finally {
      app.close();
    }
    const sidecarSpan = await waitFor(
      'the sidecar’s span of that connection at the collector',
      () => collector.spans.find((s) => s.service === 'devicemesh-sidecar' && s.name === 'app connection' && s.attributes['devicemesh.bytes_in'] === 'AT+ECHO=traced\r'.length),
      15_000,
    );
    const inTrace = (): CollectedSpan[] => collector.spans.filter((s) => s.traceId === sidecarSpan.traceId);
    await waitFor('the agent’s spans of that trace', () => inTrace().filter((s) => s.service === 'devicemesh-agent').length >= 3, 15_000);
    const spans = inTrace();
    assert.equal(sidecarSpan.parentSpanId, '', 'the sidecar starts the trace');
    assert.equal(sidecarSpan.attributes['devicemesh.binding'], 'obs-at');
    const commandSpans = spans.filter((s) => s.name === 'device command');
    assert.equal(commandSpans.length, 1, 'one command, one command span');
    const commandSpan = commandSpans[0] as CollectedSpan;
    assert.equal(commandSpan.service, 'devicemesh-agent');
    assert.equal(commandSpan.parentSpanId, sidecarSpan.spanId, 'the agent continues the sidecar’s span');
    assert.equal(commandSpan.attributes['devicemesh.binding'], 'obs-at');
    assert.equal(commandSpan.attributes['devicemesh.request_bytes'], 'AT+ECHO=traced\r'.length);
    for (const name of ['queue wait', 'device']) {
      const child = spans.find((s) => s.name === name);
      assert.ok(child, `a "${name}" span in the trace`);
      assert.equal(child.parentSpanId, commandSpan.spanId, `"${name}" is a child of the command span`);
    }
  });

  it('describes a binding: its mapping, effective policy, live rates and recent errors', async () => {
    // The agent reports the rates of bindings with an open session: the app stays connected.
    const app = await AppClient.connect(virtualPort);
    let out: string;
    try {
      for (let i = 0; i < 3; i++) await command(app, `describe-${i}`);
      out = await waitFor('describe to show live rates', () => {
        const r = runCli(['describe', 'binding', 'obs-at', '--control-plane', cp, '--admin', admins['control-plane']]);
        assert.equal(r.code, 0, r.stderr);
        return /^Live rates:$/m.test(r.stdout) ? r.stdout : undefined;
      }, 10_000);
    } finally {
      app.close();
    }
    assert.match(out, /^Name:\s+obs-at$/m);
    assert.match(out, /^Workload:\s+app1$/m);
    assert.match(out, /^Phase:\s+MAPPED$/m);
    assert.match(out, new RegExp(`^Device:\\s+gw1:${pty.device.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
    assert.match(out, new RegExp(`^Virtual:\\s+raw://127\\.0\\.0\\.1:${virtualPort}$`, 'm'));
    assert.match(out, /^Mapping:\s+\S+ \(version \d+\)$/m);
    assert.match(out, /^\s+Sharing:\s+shared$/m);
    assert.match(out, /^\s+Queue depth:\s+16$/m);
    assert.match(out, /^\s+Rate limit:\s+unlimited$/m);
    assert.match(out, /^Proxies:$/m);
    assert.match(out, /^\s+agent\/gw1\s+SYNCED/m);
    assert.match(out, /^\s+sidecar\/app1\s+SYNCED/m);
    assert.match(out, /^Live rates:$/m);
    assert.match(out, /^\s+Bytes:\s+\S+/m);
    assert.match(out, /^Recent errors:\s+none$/m);

    const missing = runCli(['describe', 'binding', 'no-such', '--control-plane', cp, '--admin', admins['control-plane']]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /binding no-such not found/);
    const json = runCli(['describe', 'binding', 'obs-at', '-o', 'json', '--control-plane', cp, '--admin', admins['control-plane']]);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as { binding: { name: string }; mapping: { id: string } | null; proxies: unknown[] };
    assert.equal(doc.binding.name, 'obs-at');
    assert.ok(doc.mapping);
    assert.equal(doc.proxies.length, 2);
  });

  it('lists proxies with the versions they acknowledged', () => {
    const r = runCli(['get', 'proxies', '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+TYPE\s+SENT\s+ACKED\s+STATE/m);
    assert.match(r.stdout, /^agent\/gw1\s+devicemesh\.v1\.Mapping\s+(\d+)\s+\1\s+SYNCED/m);
    assert.match(r.stdout, /^sidecar\/app1\s+devicemesh\.v1\.Mapping\s+(\d+)\s+\1\s+SYNCED/m);
  });
});
