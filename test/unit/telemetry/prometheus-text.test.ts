import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { prometheusText } from '../../../src/telemetry/prometheus-text';
import { Stats } from '../../../src/telemetry/stats';

/** Collects on demand: what a Prometheus scrape through the SDK pulls. */
class PullReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }

  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** The SDK's exposition of what `reader` collects, help texts applied and metrics sorted as Stats sorts them. */
async function sdkText(reader: PullReader, help: ReadonlyMap<string, string>): Promise<string> {
  const { resourceMetrics } = await reader.collect();
  const described: ResourceMetrics = {
    resource: resourceMetrics.resource,
    scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({
      scope: scope.scope,
      metrics: [...scope.metrics]
        .sort((a, b) => a.descriptor.name.localeCompare(b.descriptor.name))
        .map((m) => ({ ...m, descriptor: { ...m.descriptor, description: help.get(m.descriptor.name) ?? m.descriptor.description } })),
    })),
  };
  return new PrometheusSerializer('devicemesh', false, undefined, false, true).serialize(described);
}

type Op =
  | { kind: 'counter'; name: string; labels: Record<string, string>; delta: number }
  | { kind: 'gauge'; name: string; labels: Record<string, string>; value: number }
  | { kind: 'histogram'; name: string; labels: Record<string, string>; value: number };

// Names as OpenTelemetry allows them, with the '.' and '-' Prometheus does not, one set per kind
// (a counter and a gauge of one name are not a case Stats has).
const nameOf = (prefix: string): fc.Arbitrary<string> => fc.stringMatching(/^[a-z][a-z0-9_.-]{0,8}$/).map((n) => `${prefix}${n}`);
const labelValue = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('a"b', 'back\\slash', 'new\nline', ''));
const labels = fc.dictionary(fc.constantFrom('binding', 'device', 'reason', 'peer.host', 'a-b'), labelValue, { maxKeys: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('counter' as const), name: nameOf('c'), labels, delta: fc.nat({ max: 1_000_000 }) }),
  fc.record({ kind: fc.constant('gauge' as const), name: nameOf('g'), labels, value: fc.oneof(fc.double({ noNaN: false }), fc.integer()) }),
  fc.record({ kind: fc.constant('histogram' as const), name: nameOf('h'), labels, value: fc.double({ min: 0, max: 100, noNaN: true }) }),
);
const BOUNDS = [0.5, 1, 10];

describe('telemetry: the Prometheus exposition without the SDK', () => {
  it('prints what the OpenTelemetry SDK prints for the same counters, gauges and histograms (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), fc.dictionary(nameOf('c'), fc.string({ maxLength: 8 }), { maxKeys: 3 }), async (ops, helpTexts) => {
        const reader = new PullReader();
        const stats = new Stats(helpTexts, { service: 'devicemesh-test', readers: [reader] });
        try {
          for (const o of ops) {
            if (o.kind === 'counter') stats.counter(o.name, o.labels).add(o.delta);
            else if (o.kind === 'gauge') stats.set(o.name, o.value, o.labels);
            else stats.histogram(o.name, o.labels, BOUNDS).observe(o.value);
          }
          assert.equal(await stats.renderPrometheus(), await sdkText(reader, new Map(Object.entries(helpTexts))));
        } finally {
          await stats.close();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('leaves out a histogram nothing was observed into, and says so when there are no metrics at all', () => {
    const empty = prometheusText({ 'service.name': 's' }, [{ kind: 'histogram', name: 'h', help: '', points: [{ labels: {}, bounds: [1], cumulative: [0, 0], count: 0, sum: 0 }] }]);
    assert.equal(empty, '# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{service_name="s"} 1\n# no registered metrics');
  });

  it('escapes label values and help texts, adds _total to counters once, and writes ±Inf', () => {
    const text = prometheusText({}, [
      { kind: 'counter', name: 'bytes.in', help: 'a\\b\nc', points: [{ labels: { 'peer.id': 'x"y\nz' }, value: 3 }] },
      { kind: 'counter', name: 'frames_total', help: '', points: [{ labels: {}, value: 1 }] },
      { kind: 'gauge', name: 'level', help: 'L', points: [{ labels: {}, value: -Infinity }] },
    ]);
    assert.equal(
      text,
      [
        '# HELP target_info Target metadata',
        '# TYPE target_info gauge',
        'target_info 1',
        '# HELP devicemesh_bytes_in_total a\\\\b\\nc',
        '# TYPE devicemesh_bytes_in_total counter',
        'devicemesh_bytes_in_total{peer_id="x\\"y\\nz"} 3',
        '# HELP devicemesh_frames_total description missing',
        '# TYPE devicemesh_frames_total counter',
        'devicemesh_frames_total 1',
        '# HELP devicemesh_level L',
        '# TYPE devicemesh_level gauge',
        'devicemesh_level -Inf',
        '',
      ].join('\n'),
    );
  });

  it('renders every series of a Stats that exports nothing', async () => {
    const stats = new Stats({ sessions: 'Sessions' });
    stats.counter('sessions', { binding: 'b1' }).add(2);
    stats.histogram('open_seconds', {}, [1]).observe(0.5);
    const text = await stats.renderPrometheus();
    assert.match(text, /^devicemesh_sessions_total\{binding="b1"\} 2$/m);
    assert.match(text, /^devicemesh_open_seconds_bucket\{le="1"\} 1$/m);
    assert.match(text, /^target_info\{service_name="devicemesh"\} 1$/m);
  });
});
