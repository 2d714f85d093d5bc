import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type RunningAgent, startAgent } from '../../../../agent/main';
import { ControlPlaneClient } from '../../../../cli/control-plane-client';
import { type RunningControlPlane, startControlPlane } from '../../../../control-plane/main';
import type { ListBindingsResponse, ListMappingsResponse, Mapping } from '../../../../src/proto/types';
import { FakeKubeApiServer, type StoredObject } from '../../../helpers/fake-kube-apiserver';
import { httpGet } from '../../../helpers/processes';
import { testLogger, waitFor } from '../../../unit/agent/helpers';

const LEASE = { namespace: 'devicemesh-system', name: 'devicemesh-status-writer' };

function bindingSpec(listenPort: number, queueDepth = 8): Record<string, unknown> {
  return {
    workload: 'app1',
    device: { host: 'gw1', path: 'sim:modem0' },
    virtual: { name: `modem${listenPort}`, protocol: 'raw', listen: `127.0.0.1:${listenPort}` },
    policy: { sharing: 'shared', queueDepth },
  };
}

interface Replica {
  cp: RunningControlPlane;
  client: ControlPlaneClient;
  dir: string;
  identity: string;
}

describe('Kubernetes controller against a fake API server (list/watch wire format, status subresource, Lease, Events)', function () {
  this.timeout(120_000);
  let api: FakeKubeApiServer;
  let replicas: Replica[] = [];
  let agent: RunningAgent | undefined;

  async function replica(identity: string, token: string): Promise<Replica> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dm-k8s-${identity}-`));
    const cp = await startControlPlane({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      dataDir: dir,
      insecure: true,
      log: testLogger(),
      kubernetes: { kubeConfig: api.kubeConfig(token), lease: { ...LEASE, identity, durationMs: 3000 } },
    });
    const r = { cp, client: new ControlPlaneClient(cp.grpcAddress, 10_000, { insecure: true }), dir, identity };
    replicas.push(r);
    return r;
  }

  async function stopReplica(r: Replica): Promise<void> {
    r.client.close();
    await r.cp.close();
    fs.rmSync(r.dir, { recursive: true, force: true });
    replicas = replicas.filter((x) => x !== r);
  }

  /** An agent with a simulated modem, so bindings to it can be MAPPED. */
  async function gateway(r: Replica): Promise<void> {
    agent = await startAgent({
      hostId: 'gw1',
      controlPlane: r.cp.grpcAddress,
      listen: '127.0.0.1:0',
      watch: [],
      simulate: ['modem'],
      admin: '127.0.0.1:0',
      security: { insecure: true },
      log: testLogger(),
    });
  }

  const status = (plural: string, name: string): Record<string, unknown> | undefined => api.get(plural, name).status as Record<string, unknown> | undefined;
  const waitStatus = (plural: string, name: string, check: (s: Record<string, unknown>) => boolean, what: string): Promise<void> =>
    waitFor(() => {
      const s = status(plural, name);
      return s !== undefined && check(s);
    }, what, 20_000);
  const mappingOf = async (r: Replica, binding: string): Promise<Mapping | undefined> =>
    (await r.client.call<ListMappingsResponse>('Bindings', 'ListMappings', {})).mappings.find((m) => m.binding === binding);
  const bindingNames = async (r: Replica): Promise<string[]> =>
    (await r.client.call<ListBindingsResponse>('Bindings', 'List', {})).bindings.map((b) => b.binding?.name ?? '').sort();
  /** A counter from the control plane's admin /stats, summed over its labels. */
  const counter = async (r: Replica, name: string, label = ''): Promise<number> => {
    const text = (await httpGet(`http://${r.cp.adminAddress}/stats`)).body;
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})?: (\\d+)$`, 'gm'))) if (!label || (m[1] ?? '').includes(label)) sum += Number(m[2]);
    return sum;
  };

  beforeEach(async () => {
    api = await FakeKubeApiServer.start(['token-a', 'token-b']);
  });
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
    for (const r of [...replicas]) await stopReplica(r);
    await api.close();
  });

  it('create → MAPPED with the mapping id; update → a new mapping version; delete → the mapping withdrawn', async () => {
    const r = await replica('cp-0', 'token-a');
    await gateway(r);
    api.create('bindings', 'modem', bindingSpec(7101));
    await waitStatus('bindings', 'modem', (s) => s.phase === 'MAPPED', 'status MAPPED');
    const first = await mappingOf(r, 'modem');
    assert.ok(first);
    assert.deepEqual(status('bindings', 'modem'), { phase: 'MAPPED', message: status('bindings', 'modem')?.message, mappingId: first.id, observedGeneration: 1 });

    api.update('bindings', 'modem', bindingSpec(7101, 16));
    await waitStatus('bindings', 'modem', (s) => s.observedGeneration === 2, 'status of generation 2');
    const second = await mappingOf(r, 'modem');
    assert.ok(second);
    assert.equal(second.id, first.id, 'the same mapping, a new version of it');
    assert.notEqual(second.version, first.version);
    assert.equal(second.policy?.queueDepth, 16);
    assert.equal(status('bindings', 'modem')?.phase, 'MAPPED');

    api.delete('bindings', 'modem');
    await waitFor(async () => (await mappingOf(r, 'modem')) === undefined, 'the mapping withdrawn', 20_000);
    assert.deepEqual(await bindingNames(r), []);
  });

  it('follows the mesh: a binding whose device is not there is PENDING, and MAPPED once it is', async () => {
    const r = await replica('cp-0', 'token-a');
    api.create('bindings', 'modem', bindingSpec(7102));
    await waitStatus('bindings', 'modem', (s) => s.phase === 'PENDING', 'status PENDING');
    assert.match(String(status('bindings', 'modem')?.message), /device .*sim:modem0.* is not in the register/);
    assert.equal(status('bindings', 'modem')?.mappingId, '');
    await gateway(r);
    await waitStatus('bindings', 'modem', (s) => s.phase === 'MAPPED' && s.mappingId !== '', 'status MAPPED once the agent registered the device');
  });

  it('an invalid resource → REFUSED with the validator\'s message and a Warning Event; the mesh is unchanged; a DevicePolicy too', async () => {
    const r = await replica('cp-0', 'token-a');
    api.create('bindings', 'bad', { ...bindingSpec(7103), virtual: { name: 'm', protocol: 'telnet', listen: '127.0.0.1:7103' } });
    await waitStatus('bindings', 'bad', (s) => s.phase === 'REFUSED', 'status REFUSED');
    const s = status('bindings', 'bad') as Record<string, unknown>;
    assert.match(String(s.message), /^binding\/bad: document 1 \(binding\/bad\): virtual\.protocol: "telnet" is not one of raw, rfc2217, grpc, pty, modbus-tcp$/);
    assert.equal(s.observedGeneration, 1);
    await waitFor(() => api.events.length > 0, 'an Event', 10_000);
    const event = api.events[0] as StoredObject & { involvedObject: Record<string, unknown>; reason: string; type: string; message: string };
    assert.deepEqual([event.metadata.namespace, event.type, event.reason, event.involvedObject.kind, event.involvedObject.name], ['default', 'Warning', 'Refused', 'Binding', 'bad']);
    assert.equal(event.message, s.message);
    assert.deepEqual(await bindingNames(r), []);

    // The same refusal again (a status-only change) makes no second Event.
    api.create('devicepolicies', 'lab', { sharing: 'sometimes' });
    await waitStatus('devicepolicies', 'lab', (p) => p.phase === 'REFUSED', 'policy REFUSED');
    assert.match(String(status('devicepolicies', 'lab')?.message), /sharing: "sometimes" is not one of exclusive, shared, time-slice, broadcast/);
    api.update('devicepolicies', 'lab', { sharing: 'shared' });
    await waitStatus('devicepolicies', 'lab', (p) => p.phase === 'APPLIED' && p.observedGeneration === 2, 'policy APPLIED');
    assert.deepEqual(api.events.map((e) => (e as unknown as { involvedObject: { name: string } }).involvedObject.name), ['bad', 'lab']);
  });

  it('recovers a watch broken mid-stream and a 410 Gone without losing or repeating a change', async () => {
    const r = await replica('cp-0', 'token-a');
    await gateway(r);
    api.create('bindings', 'one', bindingSpec(7111));
    api.create('bindings', 'two', bindingSpec(7112));
    await waitStatus('bindings', 'two', (s) => s.phase === 'MAPPED', 'two MAPPED');
    await waitFor(() => api.openWatches() === 2, 'both watches open', 10_000);
    assert.ok(api.watchRequests.every((w) => w.bookmarks), 'watches ask for bookmarks');
    api.bookmark();
    const applied = await counter(r, 'kubernetes_reconciles', 'result=applied');
    assert.equal(applied, 2);

    // Broken in the middle of an event line; changes made while nobody watches.
    api.breakWatches();
    api.update('bindings', 'one', bindingSpec(7111, 32));
    api.create('bindings', 'three', bindingSpec(7113));
    await waitStatus('bindings', 'three', (s) => s.phase === 'MAPPED', 'three MAPPED after the watch came back');
    await waitStatus('bindings', 'one', (s) => s.observedGeneration === 2, 'one at generation 2');
    const resumed = api.watchRequests.filter((w) => w.plural === 'bindings').at(-1);
    assert.ok(resumed && resumed.resourceVersion !== '', 'the watch resumed from its resourceVersion, without a re-list');

    // History compacted while the watch is down: it is told 410 Gone, lists again and sees the difference.
    const listsBefore = api.lists;
    api.breakWatches();
    api.delete('bindings', 'two');
    api.update('bindings', 'three', bindingSpec(7113, 4));
    api.compact();
    await waitFor(async () => (await mappingOf(r, 'two')) === undefined, 'two withdrawn after the re-list', 20_000);
    await waitStatus('bindings', 'three', (s) => s.observedGeneration === 2, 'three at generation 2');
    assert.ok(api.lists > listsBefore, 'listed again after 410');
    assert.deepEqual(await bindingNames(r), ['one', 'three']);
    assert.equal((await mappingOf(r, 'three'))?.policy?.queueDepth, 4);

    // An open watch ended by an ERROR 410 event: the same recovery.
    await waitFor(() => api.openWatches() === 2, 'watches open again', 10_000);
    api.expireWatches();
    api.create('bindings', 'four', bindingSpec(7114));
    await waitStatus('bindings', 'four', (s) => s.phase === 'MAPPED', 'four MAPPED');

    // Every change once: 2 creates, then update one + create three, then update three, then four; the delete once.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await counter(r, 'kubernetes_reconciles', 'result=applied'), 6);
    assert.equal(await counter(r, 'kubernetes_reconciles', 'result=deleted'), 1);
  });

  it('two replicas: one status writer (the Lease holder); the other takes over when it stops', async () => {
    const a = await replica('cp-a', 'token-a');
    await waitFor(() => api.lease(LEASE.namespace, LEASE.name) !== undefined, 'the lease', 10_000);
    const b = await replica('cp-b', 'token-b');
    await gateway(a);
    api.create('devicepolicies', 'lab', { sharing: 'shared' });
    await waitStatus('devicepolicies', 'lab', (s) => s.phase === 'APPLIED', 'policy APPLIED');
    // Both replicas reconcile (each has the policy) ...
    await waitFor(async () => (await b.client.call<ListBindingsResponse>('Bindings', 'List', {})).policies.some((p) => p.name === 'lab'), 'the policy on replica b', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // ... and only the holder writes.
    const holder = (api.lease(LEASE.namespace, LEASE.name)?.spec as { holderIdentity: string }).holderIdentity;
    assert.equal(holder, 'cp-a');
    assert.deepEqual([...new Set(api.statusWrites.map((w) => w.token))], ['token-a']);
    assert.equal(await counter(a, 'kubernetes_status_writer'), 1);
    assert.equal(await counter(b, 'kubernetes_status_writer'), 0);
    assert.equal(await counter(b, 'kubernetes_status_writes'), 0);

    // The holder stops and releases the lease; the other becomes the writer.
    await agent?.close();
    agent = undefined;
    await stopReplica(a);
    await waitFor(() => (api.lease(LEASE.namespace, LEASE.name)?.spec as { holderIdentity: string }).holderIdentity === 'cp-b', 'cp-b holds the lease', 15_000);
    api.update('devicepolicies', 'lab', { sharing: 'exclusive' });
    await waitStatus('devicepolicies', 'lab', (s) => s.observedGeneration === 2, 'the new holder writes status');
    assert.equal(api.statusWrites.at(-1)?.token, 'token-b');
    const lease = api.lease(LEASE.namespace, LEASE.name)?.spec as { leaseTransitions: number };
    assert.equal(lease.leaseTransitions, 1);
  });

  it('refuses to start when the API server refuses its credentials, saying so', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dm-k8s-bad-'));
    try {
      await assert.rejects(
        startControlPlane({
          listen: '127.0.0.1:0',
          admin: '127.0.0.1:0',
          dataDir: dir,
          insecure: true,
          log: testLogger(),
          kubernetes: { kubeConfig: api.kubeConfig('wrong-token'), lease: { ...LEASE, identity: 'x' } },
        }),
        /cannot list Kubernetes custom resources: .*401|Unauthorized/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
