import * as assert from 'node:assert/strict';
import { ControlPlaneClient } from '../../../cli/control-plane-client';
import type { ApplyResponse, Binding, ListBindingsResponse, ListEndpointsResponse, ListMappingsResponse } from '../../../src/proto/types';
import { freePort, httpGet, MeshProcess, operatorSecurity, waitFor } from '../../helpers/processes';
import { removeDir, tempDir } from '../../unit/control-plane/fixtures';

const HOST = 'gw-dur';
const DEVICE = 'sim:modem0';
const POLICY = 'shared-modem';
const APPLIES_PER_ROUND = 500;
const IN_FLIGHT = 25;
/** Every so many applies a worker also deletes a binding it saw applied. */
const DELETE_EVERY = 10;

/** A binding of its own workload on the one simulated modem, which the policy lets them all share. */
function bindingDoc(name: string): Binding {
  return {
    name,
    workload: `${name}-app`,
    device: { host: HOST, path: DEVICE, id: '' },
    virtual: { workloadId: '', name: 'modem', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7000' },
    policy: null,
    policyRef: POLICY,
    serial: null,
    settings: {},
  };
}

/**
 * kill -9 of the control plane in the middle of a burst of applies and deletes, at three
 * moments, each time restarted on the same data directory: whatever was answered with success
 * must be there afterwards, the state must hang together, and no version may be handed out twice.
 */
describe('durability: kill -9 of the control plane during a burst of applies', function () {
  this.timeout(300_000);

  let dir: string;
  let cp: MeshProcess | undefined;
  let agent: MeshProcess | undefined;
  let client: ControlPlaneClient | undefined;
  let address = '';
  let starts = 0;
  /** Bindings whose apply was answered with success and that no delete has touched since. */
  const applied = new Set<string>();
  /** Bindings whose delete was answered with success. */
  const deleted = new Set<string>();
  let highestVersion = 0;

  const start = async (): Promise<ControlPlaneClient> => {
    const [listen, admin] = [await freePort(), await freePort()];
    starts += 1;
    cp = MeshProcess.start(`durability-control-plane-${starts}`, ['control-plane', '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--data-dir', dir]);
    const running = cp;
    await waitFor(
      'the control plane to be ready',
      async () => {
        if (running.child.exitCode !== null) throw new Error(`it exited with ${running.child.exitCode}: ${running.output().slice(-2000)}`);
        return (await httpGet(`http://127.0.0.1:${admin}/ready`)).status === 200;
      },
      20_000,
    );
    address = `127.0.0.1:${listen}`;
    client = new ControlPlaneClient(address, 15_000, operatorSecurity(dir));
    return client;
  };

  before(async () => {
    dir = await tempDir('devicemesh-durability-');
    const c = await start();
    // A real agent registers the simulated modem and announces its socket plane, so that the
    // bindings map. It stays up: a host's address is withdrawn when its agent's stream ends, but
    // not when the control plane dies, so the restarted control plane still maps to it.
    const [agentListen, agentAdmin] = [await freePort(), await freePort()];
    agent = MeshProcess.start('durability-agent', [
      'agent', '--host-id', HOST, '--control-plane', address,
      '--listen', `127.0.0.1:${agentListen}`, '--admin', `127.0.0.1:${agentAdmin}`, '--simulate', 'modem',
    ]);
    await waitFor(
      'the agent to register its modem and connect',
      async () => {
        const r = await c.call<ListEndpointsResponse>('Registry', 'ListEndpoints', {});
        return r.endpoints.some((e) => e.id === `${HOST}/${DEVICE}`) && r.hosts.some((h) => h.id === HOST && h.state === 'HOST_STATE_CONNECTED');
      },
      20_000,
    );
    const policy = { name: POLICY, workloads: [], access: 'ACCESS_UNSPECIFIED', sharing: 'SHARING_MODE_SHARED', bytesPerSecond: '0', queueDepth: 0, commandTimeoutMs: 0, priority: 0 };
    await c.call<ApplyResponse>('Bindings', 'Apply', { bindings: [], policies: [policy] });
  });

  after(async () => {
    client?.close();
    await agent?.stop('SIGKILL');
    await cp?.stop();
    await removeDir(dir);
  });

  /**
   * Applies (and now and then deletes) until `killAfter` applies have succeeded, then kills -9
   * `delayMs` later: the next batch is then somewhere between its checks and its write.
   */
  const burstAndKill = async (round: string, killAfter: number, delayMs: number): Promise<void> => {
    const c = client as ControlPlaneClient;
    const running = cp as MeshProcess;
    let successes = 0;
    let next = 0;
    const track = (version: string): void => {
      highestVersion = Math.max(highestVersion, Number(version));
    };
    let killed = false;
    const kill = (): void => {
      killed = true;
      setTimeout(() => running.child.kill('SIGKILL'), delayMs);
    };
    const worker = async (): Promise<void> => {
      while (next < APPLIES_PER_ROUND && !killed) {
        const i = next++;
        const name = `${round}-b${i}`;
        try {
          const r = await c.call<ApplyResponse>('Bindings', 'Apply', { bindings: [bindingDoc(name)], policies: [] });
          applied.add(name);
          track(r.version);
          successes += 1;
          // Killed from the answer of one call while the other workers' calls are in flight.
          if (successes === killAfter) kill();
        } catch {
          // Killed before the answer came: the apply may or may not have been made durable.
        }
        if (i % DELETE_EVERY === DELETE_EVERY - 1) {
          const victim = [...applied].find((n) => n.startsWith(`${round}-`));
          if (!victim) continue;
          // Until the delete is answered, the binding may be either there or gone.
          applied.delete(victim);
          try {
            const r = await c.call<{ version: string }>('Bindings', 'Delete', { kind: 'binding', name: victim });
            deleted.add(victim);
            track(r.version);
          } catch {
            // As above.
          }
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    assert.ok(successes >= killAfter, `only ${successes} of ${killAfter} applies succeeded before the burst ended`);
    assert.equal(await running.exited, null, 'the control plane died of the SIGKILL');
    console.log(`      ${round}: killed -9 ${delayMs} ms after the ${killAfter}th success, ${successes} in all (${Date.now() - started} ms); restarting`);
    c.close();
  };

  const checkAfterRestart = async (): Promise<void> => {
    const c = await start();
    const list = await c.call<ListBindingsResponse>('Bindings', 'List', {});
    const mappings = await c.call<ListMappingsResponse>('Bindings', 'ListMappings', {});
    const names = new Set(list.bindings.map((s) => s.binding?.name ?? ''));
    for (const name of applied) assert.ok(names.has(name), `binding/${name} was applied with success but is gone`);
    for (const name of deleted) assert.ok(!names.has(name), `binding/${name} was deleted with success but is back`);
    assert.deepEqual(list.policies.map((p) => p.name), [POLICY]);
    // Self-consistent: each binding maps (its device and host are remembered) to exactly the mapping listed.
    const byBinding = new Map(mappings.mappings.map((m) => [m.binding, m]));
    assert.equal(byBinding.size, mappings.mappings.length, 'one mapping per binding');
    for (const s of list.bindings) {
      assert.equal(s.phase, 'BINDING_PHASE_MAPPED', `binding/${s.binding?.name}: ${s.message}`);
      const m = byBinding.get(s.binding?.name ?? '');
      assert.ok(m, `binding/${s.binding?.name} has no mapping`);
      assert.equal(m.id, s.mappingId);
      assert.equal(m.workloadId, s.binding?.workload);
      assert.equal(m.physicalId, `${HOST}/${DEVICE}`);
    }
    assert.equal(mappings.mappings.length, list.bindings.length, 'no mapping without its binding');
    assert.ok(Number(mappings.version) > highestVersion, `version ${mappings.version} after the restart > ${highestVersion} handed out before`);
    highestVersion = Number(mappings.version);
  };

  for (const [round, killAfter, delayMs] of [['early', 50, 0], ['middle', 200, 2], ['late', 400, 5]] as const) {
    it(`keeps every answered change when killed after ${killAfter} successful applies`, async () => {
      await burstAndKill(round, killAfter, delayMs);
      await checkAfterRestart();
    });
  }
});
