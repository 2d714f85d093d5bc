import * as assert from 'node:assert/strict';
import { Histogram, Stats } from '../../../src/telemetry/stats';

describe('telemetry: histograms', () => {
  it('counts observations into fixed buckets, an observation on a bound falling into that bucket', () => {
    const h = new Histogram([0.1, 1, 10]);
    for (const v of [0.05, 0.1, 0.5, 1, 3, 20]) h.observe(v);
    assert.deepEqual(h.cumulative(), [2, 4, 5, 6]);
    assert.equal(h.count, 6);
    assert.ok(Math.abs(h.sum - 24.65) < 1e-9);
  });

  it('estimates quantiles by interpolating inside the bucket, as histogram_quantile does', () => {
    const h = new Histogram([1, 2, 4]);
    assert.ok(Number.isNaN(h.quantile(0.5)), 'no observations');
    for (let i = 0; i < 10; i++) h.observe(1.5);
    assert.equal(h.quantile(0.5), 1.5, 'halfway through the (1, 2] bucket');
    assert.equal(h.quantile(1), 2);
    h.observe(100);
    assert.equal(h.quantile(0.99), 4, 'beyond the last bound: the last bound');
    assert.throws(() => new Histogram([1, 1]), RangeError);
  });

  it('renders Prometheus _bucket{le=…}, _sum and _count with HELP and TYPE, and p50/p99 on /stats', async () => {
    const stats = new Stats({ xds_push_latency_seconds: 'From a change to its push' });
    const h = stats.histogram('xds_push_latency_seconds', {}, [0.01, 0.1]);
    assert.equal(stats.histogram('xds_push_latency_seconds'), h, 'one series per name and labels');
    h.observe(0.005);
    h.observe(0.05);
    h.observe(0.5);
    stats.histogram('rtt_seconds', { peer: 'a"b' }, [1]).observe(0.5);
    stats.describe('rtt_seconds', 'Round trips');
    const prom = await stats.renderPrometheus();
    assert.ok(
      prom.includes(
        [
          '# HELP devicemesh_xds_push_latency_seconds From a change to its push',
          '# TYPE devicemesh_xds_push_latency_seconds histogram',
          'devicemesh_xds_push_latency_seconds_count 3',
          'devicemesh_xds_push_latency_seconds_sum 0.555',
          'devicemesh_xds_push_latency_seconds_bucket{le="0.01"} 1',
          'devicemesh_xds_push_latency_seconds_bucket{le="0.1"} 2',
          'devicemesh_xds_push_latency_seconds_bucket{le="+Inf"} 3',
        ].join('\n'),
      ),
      prom,
    );
    assert.match(prom, /^# HELP devicemesh_rtt_seconds Round trips$/m);
    assert.match(prom, /^devicemesh_rtt_seconds_bucket\{peer="a\\"b",le="1"\} 1$/m);
    assert.match(prom, /^devicemesh_rtt_seconds_count\{peer="a\\"b"\} 1$/m);

    const text = stats.renderText();
    assert.match(text, /^xds_push_latency_seconds: P50\(0\.055\) P99\(0\.1\) count=3 sum=0\.555$/m);
    assert.match(text, /^rtt_seconds\{peer=a"b\}: P50\(0\.5\) P99\(0\.99\) count=1 sum=0\.5$/m);
    stats.histogram('empty');
    assert.match(stats.renderText(), /^empty: P50\(nan\) P99\(nan\) count=0 sum=0$/m);
  });

  it('leaves counters and gauges as they were', async () => {
    const stats = new Stats({ pushes: 'Pushes' });
    stats.add('pushes', 2, { type: 't' });
    stats.counter('pushes', { type: 't' }).add(1);
    stats.set('proxies', 4);
    assert.equal(stats.get('pushes', { type: 't' }), 3);
    assert.equal(stats.get('proxies'), 4);
    assert.equal(stats.renderText(), 'proxies: 4\npushes{type=t}: 3\n');
    const prom = await stats.renderPrometheus();
    assert.equal(
      prom,
      [
        '# HELP target_info Target metadata',
        '# TYPE target_info gauge',
        'target_info{service_name="devicemesh"} 1',
        '# HELP devicemesh_proxies description missing',
        '# TYPE devicemesh_proxies gauge',
        'devicemesh_proxies 4',
        '# HELP devicemesh_pushes_total Pushes',
        '# TYPE devicemesh_pushes_total counter',
        'devicemesh_pushes_total{type="t"} 3',
        '',
      ].join('\n'),
    );
  });
});
