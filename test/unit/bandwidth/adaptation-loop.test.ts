import { strict as assert } from 'node:assert';
import { canonicalMapping, canonicalPolicy } from '../../../control-plane/canonical';
import { AdaptationEvents } from '../../../control-plane/bandwidth/adaptation-events';
import { AdaptationLoop, type AdaptiveState } from '../../../control-plane/bandwidth/adaptation-loop';
import { LoadReports } from '../../../control-plane/bandwidth/load-reports';
import type { AdaptiveLimit, Mapping } from '../../../src/proto/types';
import { Stats } from '../../../src/telemetry/stats';
import { silentLog } from '../control-plane/fixtures';

/** The state's mappings in memory: a limit set is a new version, as the real state does it. */
class MemoryState implements AdaptiveState {
  version = 1;
  list: Mapping[];
  constructor(capacity: string, names: readonly string[]) {
    this.list = names.map((n) =>
      canonicalMapping({
        id: `${n}-id`,
        binding: n,
        hostId: 'gw1',
        physicalId: 'gw1/usb-1',
        version: '1',
        policy: canonicalPolicy({ sharing: 'SHARING_MODE_SHARED', weight: 1, deviceBytesPerSecond: capacity }),
      }),
    );
  }
  mappings(): Mapping[] {
    return this.list;
  }
  async setAdaptiveLimits(limits: ReadonlyMap<string, AdaptiveLimit>): Promise<{ version: string; applied: string[] }> {
    const applied = this.list.filter((m) => limits.has(m.id)).map((m) => m.id);
    if (applied.length === 0) return { version: String(this.version), applied };
    this.version += 1;
    this.list = this.list.map((m) => {
      const limit = limits.get(m.id);
      return limit ? { ...m, adaptiveLimit: limit, version: String(this.version) } : m;
    });
    return { version: String(this.version), applied };
  }
}

describe('bandwidth: adaptation loop', () => {
  let t: number;
  const clock = (): number => t;
  beforeEach(() => (t = 1_000_000));

  interface Setup {
    state: MemoryState;
    reports: LoadReports;
    stats: Stats;
    loop: AdaptationLoop;
  }
  const setup = (options: { settleMs?: number; staleAfterMs?: number } = {}): Setup => {
    const state = new MemoryState('10000', ['a', 'b']);
    const reports = new LoadReports(clock);
    const stats = new Stats();
    const loop = new AdaptationLoop({ state, reports, stats, log: silentLog, intervalMs: 1000, clock, ...options });
    return { state, reports, stats, loop };
  };
  const report = (reports: LoadReports, a: number, b: number, throttled = true): void => {
    reports.put({
      hostId: 'gw1',
      bindings: [
        { mappingId: 'a-id', bytesPerSecond: a, commandsPerSecond: 2, throttled, droppedBytes: '0', droppedCommands: '0' },
        { mappingId: 'b-id', bytesPerSecond: b, commandsPerSecond: 0, throttled, droppedBytes: '0', droppedCommands: '0' },
      ],
      devices: [{ physicalId: 'gw1/usb-1', bytesPerSecond: a + b }],
    });
  };

  it('acts on a fresh report only, and on a device only once a report measured its new limits', async () => {
    const { state, reports, loop, stats } = setup({ settleMs: 500, staleAfterMs: 3000 });
    assert.deepEqual(await loop.cycle(), [], 'no report: no change');
    report(reports, 9000, 1000, false);
    const first = await loop.cycle();
    assert.deepEqual(first.map((c) => [c.binding, c.from, c.to]), [['a', 0, 8750], ['b', 0, 1250]]);
    assert.equal(state.mappings()[0]?.adaptiveLimit?.changedAtMs, String(t));
    assert.equal(stats.get('adaptation_cycles'), 2);

    report(reports, 1000, 1000);
    assert.deepEqual(await loop.cycle(), [], 'the report came before the limits settled');
    t += 400;
    report(reports, 1000, 1000);
    assert.deepEqual(await loop.cycle(), [], 'still within the settling time');
    t += 200;
    report(reports, 8750, 1250);
    const second = await loop.cycle();
    assert.deepEqual(second.map((c) => [c.binding, c.to]), [['a', 5000], ['b', 5000]]);
    assert.deepEqual(loop.events.list().map((e) => [e.binding, e.cycle, e.version]), [['a', 2, '2'], ['b', 2, '2'], ['a', 5, '3'], ['b', 5, '3']]);

    t += 3001;
    assert.deepEqual(await loop.cycle(), [], 'a stale report is not acted on');
  });

  it('exports rates and limits as gauges, and zeroes those of withdrawn bindings', async () => {
    const { state, reports, loop, stats } = setup({ settleMs: 0 });
    report(reports, 6000, 4000, false);
    await loop.cycle();
    assert.equal(stats.get('binding_bytes_per_second', { binding: 'a' }), 6000);
    assert.equal(stats.get('binding_commands_per_second', { binding: 'a' }), 2);
    assert.equal(stats.get('device_bytes_per_second', { device: 'gw1/usb-1' }), 10000);
    assert.equal(stats.get('device_capacity_bytes_per_second', { device: 'gw1/usb-1' }), 10000);
    assert.equal(stats.get('adaptive_limit_bytes_per_second', { binding: 'a' }), Number(state.list[0]?.adaptiveLimit?.bytesPerSecond));
    assert.equal(stats.get('adaptive_limit_changes', { device: 'gw1/usb-1' }), 2);
    state.list = state.list.filter((m) => m.binding === 'b');
    await loop.cycle();
    assert.equal(stats.get('binding_bytes_per_second', { binding: 'a' }), 0);
    assert.equal(stats.get('adaptive_limit_bytes_per_second', { binding: 'a' }), 0);
    assert.match(await stats.renderPrometheus(), /# HELP devicemesh_adaptive_limit_bytes_per_second /);
  });

  it('records only the changes the state applied: a mapping withdrawn meanwhile has none', async () => {
    const { state, reports, loop, stats } = setup({ settleMs: 0 });
    report(reports, 6000, 4000, false);
    const withdraw = state.setAdaptiveLimits.bind(state);
    state.setAdaptiveLimits = (limits) => {
      state.list = state.list.filter((m) => m.binding === 'b');
      return withdraw(limits);
    };
    const changes = await loop.cycle();
    assert.deepEqual(changes.map((c) => c.binding), ['b']);
    assert.deepEqual(loop.events.list().map((e) => e.binding), ['b']);
    assert.equal(stats.get('adaptive_limit_changes', { device: 'gw1/usb-1' }), 1);
  });

  it('keeps the last changes only, oldest first', () => {
    const events = new AdaptationEvents(3);
    for (let i = 0; i < 5; i++) events.add({ mappingId: 'm', binding: 'a', device: 'd', from: i, to: i + 1, reason: 'r', at: i, cycle: i, version: String(i) });
    assert.deepEqual(events.list().map((e) => e.cycle), [2, 3, 4]);
  });

  it('runs on its timer and stops on close', async () => {
    const state = new MemoryState('10000', ['a']);
    const stats = new Stats();
    const loop = new AdaptationLoop({ state, reports: new LoadReports(), stats, log: silentLog, intervalMs: 5 });
    loop.start();
    await new Promise((r) => setTimeout(r, 100));
    await loop.close();
    const ran = stats.get('adaptation_cycles');
    assert.ok(ran >= 2, `${ran} cycles`);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(stats.get('adaptation_cycles'), ran, 'no cycle after close');
  });
});
