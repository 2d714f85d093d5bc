import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DeviceMeshError } from '../../src/errors';
import { DEVICEMESH_PROTO_ROOT } from '../../src/proto/paths';
import type { ListEndpointsResponse, ListMappingsResponse, ListProxiesResponse, Mapping, PhysicalEndpoint } from '../../src/proto/types';
import { FramedConnection } from '../../src/socket-plane/connection';
import { dialAgent, joinAs } from '../helpers/mesh-member';
import { type DeviceEvent, DeviceEventType, ModemLine } from '../../src/socket-plane/device-event';
import type { Session } from '../../src/socket-plane/session';
import { AppClient } from '../helpers/app-client';
import { EchoResponder } from '../helpers/echo-responder';
import { cli, freePort, MeshProcess, waitFor } from '../helpers/processes';
import { haveSocat, PtyPair } from '../helpers/pty';

/**
 * Issue 4 on real processes: devices plugged into and pulled out of a watched directory (socat
 * ptys), the serial configuration a binding asks for as the kernel then has it, a configuration
 * the driver refuses, modem-line events, and an agent restarted while a device went away.
 */
describe('e2e: hotplug, device configuration and events on a live mesh', function () {
  this.timeout(120_000);

  let tmp: string;
  let cp: string;
  let ports: Record<'cp' | 'cpAdmin' | 'agent' | 'agentAdmin' | 'sidecarAdmin' | 'v1' | 'v2' | 'v3', number>;
  let controlPlane: MeshProcess;
  let agent: MeshProcess;
  let sidecar: MeshProcess;
  const ptys: PtyPair[] = [];
  const echoes: EchoResponder[] = [];

  const get = <T>(what: string): T => {
    const r = cli(['get', what, '-o', 'json', '--control-plane', cp]);
    assert.equal(r.code, 0, `get ${what} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const endpointAt = (p: string): PhysicalEndpoint | undefined => get<ListEndpointsResponse>('endpoints').endpoints.find((e) => e.path === p);
  const mappingOf = (binding: string): Mapping | undefined => get<ListMappingsResponse>('mappings').mappings.find((m) => m.binding === binding);
  const apply = (text: string): void => {
    const file = path.join(tmp, `apply-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(file, text);
    const r = cli(['apply', '-f', file, '--control-plane', cp]);
    assert.equal(r.code, 0, r.stderr);
  };
  const binding = (name: string, device: string, port: number, serial = 'serial: { baudRate: 115200 }', extra = ''): string => `
kind: Binding
name: ${name}
workload: app1
device: { host: gw1, path: ${device} }
virtual: { name: ${name}, protocol: raw, listen: 127.0.0.1:${port} }
${serial}
${extra}`;

  async function plug(name: string): Promise<PtyPair> {
    const pair = await PtyPair.create(path.join(tmp, name), path.join(tmp, `peer-${name}`));
    ptys.push(pair);
    echoes.push(await EchoResponder.open(pair.peer));
    return pair;
  }

  const startAgent = (): MeshProcess =>
    MeshProcess.start('e2e-hotplug-agent', [
      'agent',
      '--host-id', 'gw1',
      '--control-plane', cp,
      '--listen', `127.0.0.1:${ports.agent}`,
      '--watch', path.join(tmp, 'tty*'),
      '--simulate', 'modem',
      '--admin', `127.0.0.1:${ports.agentAdmin}`,
    ]);

  /** A socket-plane consumer of a mapping, as a sidecar is. */
  async function consume(mapping: Mapping): Promise<{ conn: FramedConnection; session: Session }> {
    const member = await joinAs(cp, 'workload', 'app1');
    const conn = new FramedConnection(await dialAgent(ports.agent, 'gw1', member.material), 'client');
    member.close();
    return { conn, session: await conn.openSession({ mappingId: mapping.id, workloadId: 'app1' }) };
  }

  before(async function () {
    if (!haveSocat()) {
      console.log('    skipped: socat is not installed (the README test command installs it)');
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-hotplug-'));
    ports = {
      cp: await freePort(),
      cpAdmin: await freePort(),
      agent: await freePort(),
      agentAdmin: await freePort(),
      sidecarAdmin: await freePort(),
      v1: await freePort(),
      v2: await freePort(),
      v3: await freePort(),
    };
    cp = `127.0.0.1:${ports.cp}`;
    controlPlane = MeshProcess.start('e2e-hotplug-control-plane', ['control-plane', '--listen', cp, '--admin', `127.0.0.1:${ports.cpAdmin}`, '--data-dir', path.join(tmp, 'data')]);
    agent = startAgent();
    sidecar = MeshProcess.start('e2e-hotplug-sidecar', ['sidecar', '--workload-id', 'app1', '--control-plane', cp, '--admin', `127.0.0.1:${ports.sidecarAdmin}`]);
    await waitFor('the agent to register its simulated modem', () => endpointAt('sim:modem0')?.state === 'ENDPOINT_STATE_PRESENT', 20_000);
  });

  after(async () => {
    await Promise.all([sidecar?.stop(), agent?.stop(), controlPlane?.stop()]);
    for (const e of echoes) await e.close();
    for (const p of ptys) await p.remove();
  });

  it('registers a pty plugged into the watched directory and marks it absent when pulled (times printed)', async () => {
    let t0 = Date.now();
    const pair = await plug('ttyHP0');
    await waitFor('the plugged pty in the register', () => endpointAt(pair.device)?.state === 'ENDPOINT_STATE_PRESENT', 5000);
    const onboarded = Date.now() - t0;
    t0 = Date.now();
    await pair.remove();
    await waitFor('the pulled pty marked absent', () => endpointAt(pair.device)?.state === 'ENDPOINT_STATE_ABSENT', 5000);
    console.log(`      onboarded in ${onboarded} ms, marked absent in ${Date.now() - t0} ms (each including a CLI call of ~300 ms)`);
  });

  it('resets a session on a pulled device with "device removed", and brings its mapping back when it is plugged in again', async () => {
    let pair = await plug('ttyHP1');
    apply(binding('hp-replug', pair.device, ports.v1, 'serial: { baudRate: 115200 }', 'policy: { sharing: broadcast }'));
    const mapping = await waitFor('the mapping', () => mappingOf('hp-replug'), 10_000);
    const app = await waitFor('the virtual device to listen', () => AppClient.connect(ports.v1).catch(() => undefined), 10_000);
    assert.deepEqual(await app.roundTrip(Buffer.from('before')), Buffer.from('before'));
    const consumer = await consume(mapping);
    const reset = new Promise<DeviceMeshError>((resolve) => consumer.session.once('close', resolve));

    await pair.remove();
    const err = await reset;
    assert.equal(err.code, 'DEVICE_ERROR');
    assert.match(err.message, /device .*ttyHP1 removed/);
    await waitFor('the app connection closed', () => app.closed, 5000);
    consumer.conn.destroy();
    await waitFor('the binding pending while the device is away', () => mappingOf('hp-replug') === undefined, 5000);

    pair = await plug('ttyHP1');
    const back = await waitFor('the mapping back', () => mappingOf('hp-replug'), 10_000);
    assert.equal(back.id, mapping.id, 'the same mapping, nobody re-applied anything');
    const again = await waitFor('the virtual device to listen again', () => AppClient.connect(ports.v1).catch(() => undefined), 10_000);
    try {
      assert.deepEqual(await again.roundTrip(Buffer.from('after replug')), Buffer.from('after replug'));
    } finally {
      again.close();
    }
  });

  it('opens the pty with the binding serial settings (stty shows them), applies a pushed baud change live and reports it in the endpoint', async () => {
    const pair = await plug('ttyHP2');
    apply(binding('hp-config', pair.device, ports.v2, 'serial: { baudRate: 9600, stopBits: 2, flowControl: rtscts }'));
    const app = await waitFor('the virtual device to listen', () => AppClient.connect(ports.v2).catch(() => undefined), 10_000);
    try {
      // The device opens with the first session.
      assert.deepEqual(await app.roundTrip(Buffer.from('x')), Buffer.from('x'));
      const stty = (): string => execFileSync('stty', ['-F', pair.device, '-a'], { encoding: 'utf8' });
      const flags = (): string[] => stty().split(/[\s;]+/);
      assert.match(stty(), /speed 9600 baud/);
      assert.ok(flags().includes('cstopb') && flags().includes('crtscts'), stty());
      const reported = await waitFor('the configuration in the endpoint', () => {
        const c = endpointAt(pair.device)?.configuration;
        return c?.baudRate === '9600' ? c : undefined;
      }, 10_000);
      assert.deepEqual([reported.stopBits, reported.flowControl, reported.source], ['2', 'rtscts', 'device']);

      const agentPid = agent.child.pid;
      apply(binding('hp-config', pair.device, ports.v2, 'serial: { baudRate: 57600, stopBits: 2, flowControl: rtscts }'));
      await waitFor('speed 57600 on the pty', () => /speed 57600 baud/.test(stty()), 10_000);
      await waitFor('57600 in the endpoint', () => endpointAt(pair.device)?.configuration.baudRate === '57600', 10_000);
      assert.equal(agent.child.pid, agentPid);
      assert.deepEqual(await app.roundTrip(Buffer.from('still here')), Buffer.from('still here'), 'the connection survived the change');
    } finally {
      app.close();
    }
  });

  it('NACKs a configuration the driver refuses, with the driver reason, and keeps serving', async () => {
    apply(binding('hp-refused', 'sim:modem0', ports.v3, 'serial: { baudRate: 115200 }', 'settings: { modemPollMillis: 5 }\npolicy: { sharing: broadcast }'));
    const nack = await waitFor('the agent NACK', () => {
      const a = get<ListProxiesResponse>('proxies').proxies.find((p) => p.kind === 'agent' && p.nodeId === 'gw1');
      return a?.types.find((t) => t.state === 'SYNC_STATE_NACKED');
    }, 10_000);
    assert.match(nack.nackMessage, /settings\.modemPollMillis: is not a setting of the serial driver/);
    apply(binding('hp-refused', 'sim:modem0', ports.v3, 'serial: { baudRate: 115200 }', 'settings: { modemPollMs: 20 }\npolicy: { sharing: broadcast }'));
    await waitFor('the agent back in sync', () => {
      const a = get<ListProxiesResponse>('proxies').proxies.find((p) => p.kind === 'agent' && p.nodeId === 'gw1');
      return a?.types.every((t) => t.state === 'SYNC_STATE_SYNCED');
    }, 10_000);
  });

  it('delivers a modem-line change to a connected consumer as a timestamped event', async () => {
    const mapping = await waitFor('the modem mapping', () => mappingOf('hp-refused'), 10_000);
    const { conn, session } = await consume(mapping);
    try {
      const events: DeviceEvent[] = [];
      session.on('event', (e: DeviceEvent) => events.push(e));
      session.on('data', (chunk: Buffer) => session.consumed(chunk.length));
      await new Promise((r) => setTimeout(r, 200)); // the first modem-line reading is the baseline
      const before = Date.now();
      session.write(Buffer.from('ATD5551234\r'));
      const dcd = await waitFor('the DCD event', () => events.find((e) => e.type === DeviceEventType.ModemLines && (e.value & ModemLine.dcd) !== 0), 5000);
      assert.equal(dcd.source, 'dcd');
      assert.ok(dcd.timestampMs >= before - 5 && dcd.timestampMs <= Date.now() + 5);
    } finally {
      conn.destroy();
    }
  });

  it('serves the simulated modem over the gRPC device API to a plain grpc-js client: data, a command with its answer, an event', async () => {
    const port = await freePort();
    // Broadcast has one read-write binding per device: the modem's earlier binding makes way.
    assert.equal(cli(['delete', 'binding', 'hp-refused', '--control-plane', cp]).code, 0);
    apply(`kind: Binding\nname: hp-grpc\nworkload: app1\ndevice: { host: gw1, path: sim:modem0 }\nvirtual: { name: modem-grpc, protocol: grpc, listen: 127.0.0.1:${port} }\npolicy: { sharing: broadcast }\nsettings: { modemPollMs: 20 }\n`);
    const definition = protoLoader.loadSync('devicemesh/v1/device.proto', { includeDirs: [DEVICEMESH_PROTO_ROOT], longs: String, enums: String, defaults: true, oneofs: true });
    const v1 = (grpc.loadPackageDefinition(definition).devicemesh as grpc.GrpcObject).v1 as grpc.GrpcObject;
    const Client = v1.DeviceSession as grpc.ServiceClientConstructor;
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    interface Response {
      response: string;
      data?: Buffer;
      commandResult?: { requestId: number; ok: boolean; value: number };
      event?: { type: string; source: string; value: number };
    }
    const responses: Response[] = [];
    try {
      const call = await waitFor('the gRPC virtual device', async () => {
        const c = (client as unknown as { Open(): grpc.ClientDuplexStream<object, Response> }).Open();
        c.on('data', (r: Response) => responses.push(r));
        c.on('error', () => undefined);
        const opened = await new Promise<boolean>((resolve) => {
          c.once('data', (r: Response) => resolve(r.response === 'opened'));
          c.once('status', () => resolve(false));
        });
        return opened ? c : undefined;
      }, 15_000);
      const text = (): string => Buffer.concat(responses.flatMap((r) => (r.data ? [r.data] : []))).toString('latin1');
      call.write({ data: Buffer.from('AT\r') });
      await waitFor('OK from the modem', () => text().includes('OK'), 5000);
      call.write({ command: { requestId: 7, op: 'COMMAND_OP_SERIAL_CONFIGURE', target: 'baudRate', value: 0 } });
      const result = await waitFor('the command result', () => responses.find((r) => r.commandResult?.requestId === 7)?.commandResult, 5000);
      assert.deepEqual([result.ok, result.value], [true, 115200]);
      await new Promise((r) => setTimeout(r, 100)); // the first modem-line reading is the baseline
      call.write({ data: Buffer.from('ATD5551234\r') });
      const event = await waitFor('the DCD event', () => responses.find((r) => r.event?.source === 'dcd')?.event, 5000);
      assert.equal(event.type, 'DEVICE_EVENT_TYPE_MODEM_LINES');
      call.cancel();
    } finally {
      client.close();
    }
  });

  it('after an agent restart, rediscovers what is plugged and has the control plane mark absent what went away meanwhile', async () => {
    const stays = await plug('ttyHP3');
    const goes = await plug('ttyHP4');
    await waitFor('both in the register', () => [stays, goes].every((p) => endpointAt(p.device)?.state === 'ENDPOINT_STATE_PRESENT'), 5000);
    await agent.stop();
    await goes.remove();
    agent = startAgent();
    // A stopping agent marks its devices absent, so wait for the restarted one to report what is still plugged.
    await waitFor('the plugged pty and the modem back', () => [stays.device, 'sim:modem0'].every((d) => endpointAt(d)?.state === 'ENDPOINT_STATE_PRESENT'), 20_000);
    assert.equal(endpointAt(goes.device)?.state, 'ENDPOINT_STATE_ABSENT');
  });
});
