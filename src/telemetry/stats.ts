/**
 * Counters, gauges and histograms of one process, keyed by name and labels, rendered for the
 * admin's `/stats` (Envoy's flat text) and `/stats/prometheus`. Cheap enough for the data path:
 * an increment is one Map lookup on a key the caller builds once.
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

export class Stats {
  private readonly counters = new Map<string, Series>();
  private readonly gauges = new Map<string, Series>();
  private readonly histograms = new Map<string, HistogramSeries>();
  private readonly help: Map<string, string>;

  /** @param help each metric's help text, shown by /stats/prometheus. */
  constructor(help: Readonly<Record<string, string>> = {}) {
    this.help = new Map(Object.entries(help));
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
      s = { name, labels: { ...labels }, histogram: new Histogram(bounds) };
      this.histograms.set(key, s);
    }
    return s.histogram;
  }

  counter(name: string, labels: Labels = {}): Counter {
    const s = this.series(this.counters, name, labels);
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
    const s = this.series(this.counters, name, labels);
    s.value += delta;
  }

  set(name: string, value: number, labels: Labels = {}): void {
    this.series(this.gauges, name, labels).value = value;
  }

  get(name: string, labels: Labels = {}): number {
    const key = seriesKey(name, labels);
    return this.counters.get(key)?.value ?? this.gauges.get(key)?.value ?? 0;
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
    for (const s of [...this.counters.values(), ...this.gauges.values()]) lines.push(`${head(s.name, s.labels)}: ${s.value}`);
    for (const { name, labels, histogram: h } of this.histograms.values()) {
      lines.push(`${head(name, labels)}: P50(${formatNumber(h.quantile(0.5))}) P99(${formatNumber(h.quantile(0.99))}) count=${h.count} sum=${formatNumber(h.sum)}`);
    }
    return lines.sort().join('\n') + '\n';
  }

  renderPrometheus(): string {
    const out: string[] = [];
    const emit = <S extends { name: string; labels: Labels }>(
      map: Map<string, S>,
      type: string,
      suffix: string,
      lines: (metric: string, s: S) => string[],
    ): void => {
      const byName = new Map<string, S[]>();
      for (const s of map.values()) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
      for (const [name, series] of [...byName.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        const metric = `devicemesh_${name}${suffix}`;
        const help = this.help.get(name);
        if (help) out.push(`# HELP ${metric} ${help}`);
        out.push(`# TYPE ${metric} ${type}`);
        for (const s of series) out.push(...lines(metric, s));
      }
    };
    emit(this.counters, 'counter', '_total', (metric, s) => [`${metric}${promLabels(s.labels)} ${s.value}`]);
    emit(this.gauges, 'gauge', '', (metric, s) => [`${metric}${promLabels(s.labels)} ${s.value}`]);
    emit(this.histograms, 'histogram', '', (metric, { labels, histogram: h }) => {
      const cumulative = h.cumulative();
      const buckets = cumulative.map((n, i) => {
        const le = i < h.bounds.length ? String(h.bounds[i]) : '+Inf';
        return `${metric}_bucket${promLabels({ ...labels, le })} ${n}`;
      });
      return [...buckets, `${metric}_sum${promLabels(labels)} ${h.sum}`, `${metric}_count${promLabels(labels)} ${h.count}`];
    });
    return out.join('\n') + '\n';
  }

  private series(map: Map<string, Series>, name: string, labels: Labels): Series {
    const key = seriesKey(name, labels);
    let s = map.get(key);
    if (!s) {
      s = { name, labels: { ...labels }, value: 0 };
      map.set(key, s);
    }
    return s;
  }
}

function promLabels(labels: Labels): string {
  const text = Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');
  return text ? `{${text}}` : '';
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
