import type { Histogram as OtelHistogram, Meter } from '@opentelemetry/api';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

/**
 * Counters, gauges and histograms of one process, keyed by name and labels, rendered for the
 * admin's `/stats` (Envoy's flat text) and `/stats/prometheus`, and exported by OTLP when
 * configured. Cheap enough for the data path: an increment is one Map lookup on a key the caller
 * builds once, or a field increment on a bound `Counter`.
 */
export type Labels = Readonly<Record<string, string>>;

interface Series {
  name: string;
  labels: Labels;
  value: number;
}

/** A counter bound once to its labels, for the data path: `add` is a field increment. */
export interface Counter {
  add(delta: number): void;
  readonly value: number;
}

/** Upper bounds, in seconds, from 1 ms to 10 s: what a push or a convergence takes. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Observations counted into fixed buckets, as Prometheus histograms are: memory stays constant
 * however many values arrive, and quantiles are estimates within a bucket.
 */
export class Histogram {
  /** Upper bounds, ascending; the implicit last bucket is +Inf. */
  readonly bounds: readonly number[];
  /** Per bucket, not cumulative; one more than `bounds` for +Inf. */
  private readonly counts: number[];
  private total = 0;
  private sumOfValues = 0;

  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    const sorted = [...bounds].sort((a, b) => a - b);
    if (sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) {
      throw new RangeError(`histogram bounds must be finite and distinct, got ${bounds.join(',')}`);
    }
    this.bounds = sorted;
    this.counts = new Array<number>(sorted.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.total += 1;
    this.sumOfValues += value;
  }

  get count(): number {
    return this.total;
  }

  get sum(): number {
    return this.sumOfValues;
  }

  /** Cumulative counts per bound, the last one for +Inf: Prometheus's `_bucket{le=…}` series. */
  cumulative(): number[] {
    let running = 0;
    return this.counts.map((c) => (running += c));
  }

  /**
   * The q-quantile (0 ≤ q ≤ 1), interpolated linearly inside its bucket as Prometheus's
   * histogram_quantile does; NaN with no observations, the highest bound when it falls in +Inf.
   */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.min(Math.max(q, 0), 1) * this.total;
    const cumulative = this.cumulative();
    for (let i = 0; i < this.bounds.length; i++) {
      const upTo = cumulative[i] as number;
      if (upTo < rank || upTo === 0) continue;
      const lower = i === 0 ? 0 : (this.bounds[i - 1] as number);
      const below = i === 0 ? 0 : (cumulative[i - 1] as number);
      return lower + ((this.bounds[i] as number) - lower) * ((rank - below) / (upTo - below));
    }
    return this.bounds[this.bounds.length - 1] ?? NaN;
  }
}

interface HistogramSeries {
  name: string;
  labels: Labels;
  histogram: Histogram;
}

/** A histogram whose observations also go to its OpenTelemetry instrument, for export. */
class ExportedHistogram extends Histogram {
  constructor(
    bounds: readonly number[],
    private readonly instrument: OtelHistogram,
    private readonly attributes: Labels,
  ) {
    super(bounds);
  }

  override observe(value: number): void {
    super.observe(value);
    this.instrument.record(value, this.attributes);
  }
}

/** Collects on demand, for /stats/prometheus: the reader a Prometheus scrape pulls through. */
class PullReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }

  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface StatsOptions {
  /** The process's `service.name` (devicemesh-agent, …), on every export. */
  service?: string;
  /** More readers, e.g. the periodic OTLP exporter's, fed by the same instruments. */
  readers?: readonly MetricReader[];
}

/**
 * The metrics of one process over the OpenTelemetry metrics SDK. Counters and gauges are
 * observable instruments: the data path adds to a plain field (a `Counter` bound once to its
 * labels), and the SDK reads every series when it collects, so no attribute hashing happens per
 * chunk. Histograms are synchronous instruments, observed once per command or push.
 */
export class Stats {
  private readonly counters = new Map<string, Map<string, Series>>();
  private readonly gauges = new Map<string, Map<string, Series>>();
  private readonly histograms = new Map<string, HistogramSeries>();
  private readonly histogramInstruments = new Map<string, OtelHistogram>();
  private readonly help: Map<string, string>;
  private readonly provider: MeterProvider;
  private readonly reader = new PullReader();
  private readonly meter: Meter;
  private readonly serializer = new PrometheusSerializer('devicemesh', false, undefined, false, true);

  /** @param help each metric's help text, shown by /stats/prometheus. */
  constructor(help: Readonly<Record<string, string>> = {}, options: StatsOptions = {}) {
    this.help = new Map(Object.entries(help));
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': options.service ?? 'devicemesh' }),
      readers: [this.reader, ...(options.readers ?? [])],
    });
    this.meter = this.provider.getMeter('devicemesh');
  }

  /** Sets a metric's help text, for modules that own metrics the process did not declare. */
  describe(name: string, help: string): void {
    this.help.set(name, help);
  }

  /** The histogram of `name` and `labels`, created with `bounds` the first time it is asked for. */
  histogram(name: string, labels: Labels = {}, bounds: readonly number[] = LATENCY_BUCKETS): Histogram {
    const key = seriesKey(name, labels);
    let s = this.histograms.get(key);
    if (!s) {
      let instrument = this.histogramInstruments.get(name);
      if (!instrument) {
        instrument = this.meter.createHistogram(name, { description: this.help.get(name) ?? '', advice: { explicitBucketBoundaries: [...bounds] } });
        this.histogramInstruments.set(name, instrument);
      }
      const attributes = { ...labels };
      s = { name, labels: attributes, histogram: new ExportedHistogram(bounds, instrument, attributes) };
      this.histograms.set(key, s);
    }
    return s.histogram;
  }

  counter(name: string, labels: Labels = {}): Counter {
    const s = this.series(this.counters, 'counter', name, labels);
    return {
      add: (delta: number): void => {
        s.value += delta;
      },
      get value(): number {
        return s.value;
      },
    };
  }

  add(name: string, delta: number, labels: Labels = {}): void {
    this.series(this.counters, 'counter', name, labels).value += delta;
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.series(this.gauges, 'gauge', name, labels).value = value;
  }

  get(name: string, labels: Labels = {}): number {
    const key = seriesKey(name, labels);
    return this.counters.get(name)?.get(key)?.value ?? this.gauges.get(name)?.get(key)?.value ?? 0;
  }

  /**
   * `name{a=b}: value` lines, sorted, as Envoy's /stats prints them; a histogram prints its
   * estimated median and 99th percentile, its count and its sum.
   */
  renderText(): string {
    const lines: string[] = [];
    const head = (name: string, labels: Labels): string => {
      const text = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
      return `${name}${text ? `{${text}}` : ''}`;
    };
    for (const map of [this.counters, this.gauges]) {
      for (const series of map.values()) for (const s of series.values()) lines.push(`${head(s.name, s.labels)}: ${s.value}`);
    }
    for (const { name, labels, histogram: h } of this.histograms.values()) {
      const quantiles = `P50(${formatNumber(h.quantile(0.5))}) P99(${formatNumber(h.quantile(0.99))})`;
      lines.push(`${head(name, labels)}: ${quantiles} count=${h.count} sum=${formatNumber(h.sum)}`);
    }
    return lines.sort().join('\n') + '\n';
  }

  /** The Prometheus text exposition of what the SDK collects now, names prefixed `devicemesh_`. */
  async renderPrometheus(): Promise<string> {
    const { resourceMetrics } = await this.reader.collect();
    const described: ResourceMetrics = {
      resource: resourceMetrics.resource,
      scopeMetrics: resourceMetrics.scopeMetrics.map((scope) => ({
        scope: scope.scope,
        metrics: [...scope.metrics]
          .sort((a, b) => a.descriptor.name.localeCompare(b.descriptor.name))
          .map((m) => ({ ...m, descriptor: { ...m.descriptor, description: this.help.get(m.descriptor.name) ?? m.descriptor.description } })),
      })),
    };
    return this.serializer.serialize(described);
  }

  /** Exports what is pending to every push reader (OTLP) and stops them. */
  close(): Promise<void> {
    return this.provider.shutdown();
  }

  private series(map: Map<string, Map<string, Series>>, kind: 'counter' | 'gauge', name: string, labels: Labels): Series {
    let byKey = map.get(name);
    if (!byKey) {
      byKey = new Map();
      map.set(name, byKey);
      const all = byKey;
      const options = { description: this.help.get(name) ?? '' };
      const instrument = kind === 'counter' ? this.meter.createObservableCounter(name, options) : this.meter.createObservableGauge(name, options);
      instrument.addCallback((result) => {
        for (const s of all.values()) result.observe(s.value, s.labels);
      });
    }
    const key = seriesKey(name, labels);
    let s = byKey.get(key);
    if (!s) {
      s = { name, labels: { ...labels }, value: 0 };
      byKey.set(key, s);
    }
    return s;
  }
}

/** Short and exact enough for a person reading /stats; `nan` as Envoy prints an empty histogram. */
function formatNumber(n: number): string {
  return Number.isNaN(n) ? 'nan' : String(Number(n.toPrecision(4)));
}

function seriesKey(name: string, labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return name;
  return `${name}|${keys.sort().map((k) => `${k}=${labels[k]}`).join('|')}`;
}
