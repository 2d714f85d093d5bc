import type { MetricReader } from '@opentelemetry/sdk-metrics';
import type { OtelMetricExport } from './otel-metric-export';
import { type MetricFamily, prometheusText } from './prometheus-text';

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

export interface StatsOptions {
  /** The process's `service.name` (devicemesh-agent, …), on every export. */
  service?: string;
  /** Push readers, e.g. the periodic OTLP exporter's; with any, the OpenTelemetry SDK is loaded to feed them. */
  readers?: readonly MetricReader[];
}

/**
 * The metrics of one process. Counters and gauges are plain fields the data path adds to (a
 * `Counter` bound once to its labels); histograms count into fixed buckets. /stats and
 * /stats/prometheus are rendered from them directly. Only with push readers (OTLP) configured is
 * the OpenTelemetry metrics SDK loaded, its instruments reading the same fields at collection.
 */
export class Stats {
  private readonly counters = new Map<string, Map<string, Series>>();
  private readonly gauges = new Map<string, Map<string, Series>>();
  private readonly histograms = new Map<string, HistogramSeries>();
  private readonly help: Map<string, string>;
  private readonly resource: Labels;
  private readonly exported: OtelMetricExport | undefined;

  /** @param help each metric's help text, shown by /stats/prometheus. */
  constructor(help: Readonly<Record<string, string>> = {}, options: StatsOptions = {}) {
    this.help = new Map(Object.entries(help));
    const service = options.service ?? 'devicemesh';
    this.resource = { 'service.name': service };
    if (options.readers && options.readers.length > 0) {
      // Required here, not imported: the SDK is most of a process's modules, and only export needs it.
      const { OtelMetricExport: Export } = require('./otel-metric-export') as typeof import('./otel-metric-export');
      this.exported = new Export(service, options.readers);
    }
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
      const attributes = { ...labels };
      const histogram = this.exported ? this.exported.histogram(name, this.help.get(name) ?? '', bounds, attributes) : new Histogram(bounds);
      s = { name, labels: attributes, histogram };
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

  /** The Prometheus text exposition of every series now, names prefixed `devicemesh_`. */
  async renderPrometheus(): Promise<string> {
    const families: MetricFamily[] = [];
    const help = (name: string): string => this.help.get(name) ?? '';
    for (const [kind, map] of [['counter', this.counters], ['gauge', this.gauges]] as const) {
      for (const [name, series] of map) families.push({ kind, name, help: help(name), points: series.values() });
    }
    const byName = new Map<string, HistogramSeries[]>();
    for (const s of this.histograms.values()) {
      const same = byName.get(s.name);
      if (same) same.push(s);
      else byName.set(s.name, [s]);
    }
    for (const [name, series] of byName) {
      const points = series.map(({ labels, histogram: h }) => ({ labels, bounds: h.bounds, cumulative: h.cumulative(), count: h.count, sum: h.sum }));
      families.push({ kind: 'histogram', name, help: help(name), points });
    }
    return prometheusText(this.resource, families);
  }

  /** Exports what is pending to every push reader (OTLP) and stops them. */
  async close(): Promise<void> {
    await this.exported?.shutdown();
  }

  private series(map: Map<string, Map<string, Series>>, kind: 'counter' | 'gauge', name: string, labels: Labels): Series {
    let byKey = map.get(name);
    if (!byKey) {
      byKey = new Map();
      map.set(name, byKey);
      this.exported?.observe(kind, name, this.help.get(name) ?? '', byKey);
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
