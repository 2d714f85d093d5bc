import * as assert from 'node:assert/strict';
import pino from 'pino';
import { ControlPlaneClient } from '../../../cli/control-plane-client';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import type { ApplyResponse, Binding, ListBindingsResponse } from '../../../src/proto/types';
import { removeDir, tempDir } from '../../unit/control-plane/fixtures';

const BURST = 1000;

function bindingDoc(i: number): Binding {
  return {
    name: `burst-${i}`,
    workload: `burst-app-${i}`,
    device: { host: 'gw1', path: `/dev/ttyBURST${i}`, id: '' },
    virtual: { workloadId: '', name: 'modem', protocol: 'VIRTUAL_PROTOCOL_RAW', listen: '127.0.0.1:7000' },
    policy: null,
    policyRef: '',
    serial: null,
    settings: {},
  };
}

describe('durability: a burst of concurrent applies', function () {
  this.timeout(120_000);

  let dir: string;
  let cp: RunningControlPlane | undefined;
  let client: ControlPlaneClient | undefined;
  const log = pino({ level: 'silent' });
  /** Durable state writes, from the control plane's `state_writes` counter on its admin /stats. */
  const writes = async (): Promise<number> => {
    const text = await (await fetch(`http://${cp?.adminAddress ?? ''}/stats`)).text();
    const count = /^state_writes: (\d+)$/m.exec(text)?.[1];
    assert.ok(count !== undefined, `no state_writes in /stats:\n${text}`);
    return Number(count);
  };

  const start = async (): Promise<ControlPlaneClient> => {
    cp = await startControlPlane({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', dataDir: dir, log, insecure: true });
    client = new ControlPlaneClient(cp.grpcAddress, 60_000);
    return client;
  };
  const stop = async (): Promise<void> => {
    client?.close();
    await cp?.close();
    cp = undefined;
  };

  beforeEach(async () => {
    dir = await tempDir('devicemesh-burst-');
  });
  afterEach(async () => {
    await stop();
    await removeDir(dir);
  });

  it(`answers ${BURST} concurrent applies, each durable, with far fewer writes than applies`, async () => {
    const c = await start();
    const writesBefore = await writes();
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: BURST }, (_, i) => c.call<ApplyResponse>('Bindings', 'Apply', { bindings: [bindingDoc(i)], policies: [] })),
    );
    const ms = Date.now() - started;
    const burstWrites = (await writes()) - writesBefore;
    console.log(`      ${BURST} concurrent applies over gRPC: ${ms} ms, ${burstWrites} state writes`);
    // A generous bound: the figure that matters is printed above, and bench/ measures it.
    assert.ok(ms < 60_000, `${ms} ms`);
    assert.deepEqual(new Set(answers.flatMap((a) => a.results)), new Set(Array.from({ length: BURST }, (_, i) => `binding/burst-${i} created`)));
    assert.ok(burstWrites >= 1 && burstWrites <= BURST / 10, `${burstWrites} writes for ${BURST} applies`);

    const listed = await c.call<ListBindingsResponse>('Bindings', 'List', {});
    assert.equal(listed.bindings.length, BURST);
    const highest = Math.max(...answers.map((a) => Number(a.version)));
    await stop();
    const again = await start();
    const reloaded = await again.call<ListBindingsResponse>('Bindings', 'List', {});
    assert.deepEqual(
      reloaded.bindings.map((s) => s.binding?.name).sort(),
      Array.from({ length: BURST }, (_, i) => `burst-${i}`).sort(),
      'every apply is there after a restart',
    );
    const { version } = await again.call<{ version: string }>('Bindings', 'ListMappings', {});
    assert.ok(Number(version) > highest);
  });
});
