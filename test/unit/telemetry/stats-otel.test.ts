import { strict as assert } from 'node:assert';
import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { Stats } from '../../../src/telemetry/stats';

describe('telemetry: Stats over the OpenTelemetry SDK', () => {
  it('exports bound counters, gauges and histograms through any SDK reader, with the service name', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const stats = new Stats({ bytes: 'Bytes moved' }, { service: 'devicemesh-test', readers: [reader] });
    try {
      const bytes = stats.counter('bytes', { binding: 'b1' });
      bytes.add(3);
      bytes.add(4);
      stats.set('depth', 2, { device: 'd' });
      stats.histogram('latency_seconds', {}, [0.1, 1]).observe(0.5);
      await reader.forceFlush();
      const [exported] = exporter.getMetrics();
      assert.ok(exported, 'one export');
      assert.equal(exported.resource.attributes['service.name'], 'devicemesh-test');
      const metrics = new Map(exported.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
      assert.equal(metrics.get('bytes')?.dataPoints[0]?.value, 7);
      assert.deepEqual(metrics.get('bytes')?.dataPoints[0]?.attributes, { binding: 'b1' });
      assert.equal(metrics.get('bytes')?.descriptor.description, 'Bytes moved');
      assert.equal(metrics.get('depth')?.dataPoints[0]?.value, 2);
      const h = metrics.get('latency_seconds')?.dataPoints[0]?.value as { count: number; sum: number; buckets: { counts: number[] } };
      assert.equal(h.count, 1);
      assert.equal(h.sum, 0.5);
      assert.deepEqual(h.buckets.counts, [0, 1, 0]);
    } finally {
      await stats.close();
    }
  });

  it('renders a counter the data path increments after a scrape, and a help text given after first use', async () => {
    const stats = new Stats();
    const c = stats.counter('frames', { mapping: 'm' });
    c.add(1);
    assert.match(await stats.renderPrometheus(), /^devicemesh_frames_total\{mapping="m"\} 1$/m);
    c.add(41);
    stats.describe('frames', 'Frames relayed');
    const text = await stats.renderPrometheus();
    assert.match(text, /^devicemesh_frames_total\{mapping="m"\} 42$/m);
    assert.match(text, /^# HELP devicemesh_frames_total Frames relayed$/m);
    assert.equal(c.value, 42);
    assert.equal(stats.get('frames', { mapping: 'm' }), 42);
  });
});
