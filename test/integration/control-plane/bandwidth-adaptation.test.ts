import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { get } from '../../../cli/commands/resources';
import type { AdaptationEvent } from '../../../control-plane/bandwidth/adaptation-events';
import { startControlPlane, type RunningControlPlane } from '../../../control-plane/main';
import { serviceClient } from '../../../src/proto/load';
import type { ApplyResponse, ListMappingsResponse, Mapping, ReportLoadRequest, ReportLoadResponse } from '../../../src/proto/types';
import { binding, endpoint, policy, removeDir, silentLog, tempDir } from '../../unit/control-plane/fixtures';
import { httpGet, sleep, TestProxy, waitFor } from '../xds/harness';

type Unary = (request: object, callback: (err: grpc.ServiceError | null, response: unknown) => void) => void;

function call<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
  return new Promise((resolve, reject) => fn.call(client, request, (err, res) => (err ? reject(err) : resolve(res as T))));
}

const CAPACITY = 10_000;
const INTERVAL_MS = 200;
const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];

/**
 * A stand-in for the agent of gw1 over the real protocols: it takes its mappings (with their
 * adaptive limits) from the discovery stream and reports, every 50 ms, what its bindings would
 * measure on a device that moves 10 kB/s in all: each binding runs at the least of what its app
 * offers, its limit, and an equal part of the device; it is throttled when its app offers more than
 * its limit lets through.
 */
class SimulatedAgent {
  readonly offered: Record<Name, number> = { a: 0, b: 0, c: 0 };
  readonly rates = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  errors: string[] = [];

  constructor(
    private readonly proxy: TestProxy,
    private readonly registry: grpc.Client,
  ) {
    this.timer = setInterval(() => this.report(), 50);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private report(): void {
    const mappings = this.proxy.last()?.mappings ?? [];
    if (mappings.length === 0) return;
    const active = mappings.filter((m) => this.offered[m.binding as Name] > 0).length;
    const request: ReportLoadRequest = { hostId: 'gw1', bindings: [], devices: [] };
    let total = 0;
    for (const m of mappings) {
      const offered = this.offered[m.binding as Name];
      const limit = Number(m.adaptiveLimit?.bytesPerSecond ?? '0') || Infinity;
      const rate = offered > 0 ? Math.min(offered, limit, CAPACITY / active) : 0;
      this.rates.set(m.binding, rate);
      total += rate;
      if (offered === 0) continue;
      const throttled = offered > limit;
      request.bindings.push({ mappingId: m.id, bytesPerSecond: rate, commandsPerSecond: 0, throttled, droppedBytes: '0', droppedCommands: '0' });
    }
    request.devices.push({ physicalId: 'gw1/usb-1', bytesPerSecond: total });
    call<ReportLoadResponse>(this.registry, 'ReportLoad', request).catch((err: Error) => this.errors.push(err.message));
  }
}

function gaugeValue(stats: string, name: string, labels: string): number {
  const line = stats.split('\n').find((l) => l.startsWith(`${name}${labels}: `));
  return line ? Number(line.slice(line.indexOf(': ') + 2)) : NaN;
}

describe('bandwidth adaptation over gRPC and xDS', function () {
  this.timeout(60_000);
  let dir: string;
  let cp: RunningControlPlane;
  let registry: grpc.Client;
  let bindings: grpc.Client;
  let proxy: TestProxy | undefined;
  let agent: SimulatedAgent | undefined;

  beforeEach(async () => {
    dir = await tempDir();
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      dataDir: dir,
      log: silentLog,
      adaptIntervalMs: INTERVAL_MS,
      // Shorter than a cycle: the simulated agent's reports measure new limits as soon as they are pushed.
      adaptation: { settleMs: 150 },
      insecure: true,
    });
    const creds = grpc.credentials.createInsecure();
    registry = new (serviceClient('devicemesh.v1.Registry'))(cp.grpcAddress, creds);
    bindings = new (serviceClient('devicemesh.v1.Bindings'))(cp.grpcAddress, creds);
  });
  afterEach(async () => {
    agent?.stop();
    proxy?.stop();
    registry.close();
    bindings.close();
    await cp.close();
    await removeDir(dir);
  });

  const limits = async (): Promise<Record<string, number>> => {
    const res = await call<ListMappingsResponse>(bindings, 'ListMappings', {});
    return Object.fromEntries(res.mappings.map((m: Mapping) => [m.binding, Number(m.adaptiveLimit?.bytesPerSecond ?? '0')]));
  };
  const cycles = async (): Promise<number> => gaugeValue(await httpGet(cp.adminAddress, '/stats'), 'adaptation_cycles', '');
  const events = async (): Promise<AdaptationEvent[]> => (JSON.parse(await httpGet(cp.adminAddress, '/adaptation')) as { changes: AdaptationEvent[] }).changes;

  it('re-divides a saturated device within 2 cycles when a third binding starts, and gives the capacity back when it stops', async () => {
    await call(registry, 'RegisterEndpoint', { endpoint: endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' }) });
    proxy = new TestProxy(cp.grpcAddress, { id: 'gw1', kind: 'agent', metadata: { socketPlane: '127.0.0.1:15020' } }, 'delta');
    const applied = await call<ApplyResponse>(bindings, 'Apply', {
      policies: [policy('metered', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: String(CAPACITY) })],
      bindings: NAMES.map((n, i) => binding(n, { workload: `app${i + 1}`, policyRef: 'metered' })),
    });
    assert.equal(applied.results.length, 4);
    await waitFor('gw1’s agent has its three mappings', () => (proxy?.last()?.mappings.length === 3 ? true : undefined));
    agent = new SimulatedAgent(proxy, registry);

    // The trace: every cycle, the limits and rates as the control plane's /stats shows them.
    const columns = (label: string, width: number): string => NAMES.map((n) => `${label} ${n}`.padStart(width)).join(' ');
    const trace: string[] = [`${'cycle'.padStart(5)}  ${columns('limit', 9)}  ${columns('rate', 8)}  phase`];
    let phase = 'a, b saturate';
    let lastCycle = 0;
    let tracing = true;
    const tracer = (async (): Promise<void> => {
      while (tracing) {
        const stats = await httpGet(cp.adminAddress, '/stats');
        const cycle = gaugeValue(stats, 'adaptation_cycles', '');
        if (cycle !== lastCycle) {
          lastCycle = cycle;
          const value = (name: string, n: string): string => String(Math.round(gaugeValue(stats, name, `{binding=${n}}`) || 0));
          trace.push(
            `${String(cycle).padStart(5)}  ${NAMES.map((n) => value('adaptive_limit_bytes_per_second', n).padStart(9)).join(' ')}  ` +
              `${NAMES.map((n) => value('binding_bytes_per_second', n).padStart(8)).join(' ')}  ${phase}`,
          );
        }
        await sleep(10);
      }
    })();

    try {
      agent.offered.a = Infinity;
      agent.offered.b = Infinity;
      // c idle keeps a floor of a tenth of the capacity, shared by three; a and b split the rest.
      const split = { a: 4833, b: 4833, c: 333 };
      await waitFor('a and b split the device', async () => (JSON.stringify(await limits()) === JSON.stringify(split) ? true : undefined), 10_000);
      await sleep(3 * INTERVAL_MS);
      assert.deepEqual(await limits(), split, 'stable while nothing changes');

      phase = 'c starts';
      const startedAt = await cycles();
      agent.offered.c = Infinity;
      const thirds = { a: 3333, b: 3333, c: 3333 };
      await waitFor('the device re-divided in three', async () => (JSON.stringify(await limits()) === JSON.stringify(thirds) ? true : undefined), 10_000);
      await sleep(3 * INTERVAL_MS);
      assert.deepEqual(await limits(), thirds, 'stable while all three saturate');
      const onStart = (await events()).filter((e) => e.cycle > startedAt);
      assert.deepEqual(new Set(onStart.map((e) => e.binding)), new Set(NAMES));
      for (const e of onStart) assert.ok(e.cycle <= startedAt + 2, `${e.binding} changed in cycle ${e.cycle}, more than 2 after ${startedAt}`);
      const forC = onStart.find((e) => e.binding === 'c') as AdaptationEvent;
      assert.equal(forC.from, 333);
      assert.equal(forC.to, 3333);
      assert.match(forC.reason, /^device gw1\/usb-1 saturated: .* of 10\.0 kB\/s \(sum of devicemesh_binding_bytes_per_second\); 3 bindings want more/);
      // Pushed: the agent has the new limits, at the version that carried them.
      const pushed = proxy.last() as { version: string; mappings: Mapping[] };
      assert.deepEqual(pushed.mappings.map((m) => m.adaptiveLimit?.bytesPerSecond), ['3333', '3333', '3333']);
      assert.ok(pushed.mappings.every((m) => m.version === forC.version || Number(m.version) >= Number(forC.version)));

      phase = 'c stops';
      const stoppedAt = await cycles();
      agent.offered.c = 0;
      await waitFor('a and b get the capacity back', async () => (JSON.stringify(await limits()) === JSON.stringify(split) ? true : undefined), 10_000);
      const onStop = (await events()).filter((e) => e.cycle > stoppedAt);
      assert.deepEqual(new Set(onStop.map((e) => e.binding)), new Set(NAMES));
      for (const e of onStop) assert.ok(e.cycle <= stoppedAt + 2, `${e.binding} changed in cycle ${e.cycle}, more than 2 after ${stoppedAt}`);
      assert.match((onStop.find((e) => e.binding === 'c') as AdaptationEvent).reason, /binding c: 0 B\/s \(devicemesh_binding_bytes_per_second\), demand 0 B\/s/);
      await sleep(INTERVAL_MS);
    } finally {
      tracing = false;
      await tracer;
    }
    console.log(`      metric trace (adaptive_limit_bytes_per_second, binding_bytes_per_second; capacity ${CAPACITY} B/s):\n${trace.map((l) => `        ${l}`).join('\n')}`);
    assert.deepEqual(agent.errors, []);

    // Visible: the gauges, `devicemesh get mappings` and the event log.
    const stats = await httpGet(cp.adminAddress, '/stats/prometheus');
    assert.match(stats, /devicemesh_adaptive_limit_bytes_per_second\{binding="a"\} 4833/);
    assert.match(stats, /devicemesh_device_capacity_bytes_per_second\{device="gw1\/usb-1"\} 10000/);
    let table = '';
    const out = { write: (chunk: string): boolean => ((table += chunk), true) } as unknown as NodeJS.WritableStream;
    await get(['mappings', '--control-plane', cp.grpcAddress, '--insecure'], out);
    const header = table.split('\n')[0] as string;
    assert.match(header, /SHARING\s+LIMIT\s+VERSION/);
    assert.match(table, /^a-\S+\s.*shared\s+4\.8 kB\/s \(adaptive\)\s+\d+$/m);
    assert.match(table, /^c-\S+\s.*shared\s+333 B\/s \(adaptive\)\s+\d+$/m);
  });

  it('keeps adaptive limits across a restart of the control plane', async () => {
    await call(registry, 'RegisterEndpoint', { endpoint: endpoint('gw1', 'usb-1', { path: '/dev/ttyUSB0' }) });
    proxy = new TestProxy(cp.grpcAddress, { id: 'gw1', kind: 'agent', metadata: { socketPlane: '127.0.0.1:15020' } }, 'delta');
    await call(bindings, 'Apply', {
      policies: [],
      bindings: [binding('a', { policy: policy('', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '8000', weight: 3 }) }),
        binding('b', { workload: 'app2', policy: policy('', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '8000' }) })],
    });
    await waitFor('mappings', () => (proxy?.last()?.mappings.length === 2 ? true : undefined));
    agent = new SimulatedAgent(proxy, registry);
    // Idle: each keeps an equal floor (a tenth of the capacity, halved), and the rest is spread by weight, 3:1.
    const idle = { a: 400 + 5400, b: 400 + 1800 };
    await waitFor('limits by weight', async () => (JSON.stringify(await limits()) === JSON.stringify(idle) ? true : undefined), 10_000);
    agent.stop();
    proxy.stop();
    proxy = undefined;
    registry.close();
    bindings.close();
    await cp.close();

    cp = await startControlPlane({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', dataDir: dir, log: silentLog, adaptIntervalMs: INTERVAL_MS, insecure: true });
    const creds = grpc.credentials.createInsecure();
    registry = new (serviceClient('devicemesh.v1.Registry'))(cp.grpcAddress, creds);
    bindings = new (serviceClient('devicemesh.v1.Bindings'))(cp.grpcAddress, creds);
    assert.deepEqual(await limits(), idle);
    const reason = (await call<ListMappingsResponse>(bindings, 'ListMappings', {})).mappings[0]?.adaptiveLimit?.reason ?? '';
    assert.match(reason, /^device gw1\/usb-1 has room: 0 B\/s of 8\.0 kB\/s/);
  });

  it('refuses a load report that is not one, with INVALID_ARGUMENT', async () => {
    const bad = (request: object): Promise<void> =>
      assert.rejects(call(registry, 'ReportLoad', request), (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT);
    await bad({ hostId: '', bindings: [], devices: [] });
    await bad({ hostId: 'gw1', bindings: [{ mappingId: 'x', bytesPerSecond: -1 }], devices: [] });
    await bad({ hostId: 'gw1', bindings: [{ mappingId: 'x' }, { mappingId: 'x' }], devices: [] });
    await bad({ hostId: 'gw1', bindings: [], devices: [{ physicalId: 'gw1/d', bytesPerSecond: Number.NaN }] });
    const ok = await call<ReportLoadResponse>(registry, 'ReportLoad', { hostId: 'gw1', bindings: [{ mappingId: 'nobody', bytesPerSecond: 5 }], devices: [] });
    assert.deepEqual(ok.unknownMappingIds, ['nobody']);
  });

  it('refuses at apply, with the reason, what the bandwidth rules forbid', async () => {
    await call(registry, 'RegisterEndpoint', { endpoint: endpoint('gw1', 'gpio-1', { path: '/dev/gpiochip0', kind: 'DEVICE_KIND_GPIO' }) });
    const refused = (docs: object, reason: RegExp): Promise<void> =>
      assert.rejects(call(bindings, 'Apply', { policies: [], ...docs }), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
        assert.match(err.details, reason);
        return true;
      });
    await refused(
      { bindings: [binding('g', { device: { host: 'gw1', path: '/dev/gpiochip0', id: '' }, policy: policy('', { sharing: 'SHARING_MODE_TIME_SLICE' }) })] },
      /binding\/g: policy\.sharing: time-slice sharing is not possible on a gpio device/,
    );
    await refused(
      {
        bindings: [
          binding('a', { policy: policy('', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '1000', minBytesPerSecond: '600' }) }),
          binding('b', { workload: 'app2', policy: policy('', { sharing: 'SHARING_MODE_SHARED', deviceBytesPerSecond: '1000', minBytesPerSecond: '600' }) }),
        ],
      },
      /minimums of gw1:\/dev\/ttyUSB0's bindings add up to 1200 bytes\/s/,
    );
  });
});
