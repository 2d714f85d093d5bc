import type { Histogram as OtelHistogram, Meter } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, type MetricReader } from '@opentelemetry/sdk-metrics';
import { Histogram, type Labels } from './stats';

/** What an observable instrument reads at each collection: the live series of one metric. */
export interface ObservedSeries {
  values(): Iterable<{ labels: Labels; value: number }>;
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

/**
 * A `Stats`'s metrics fed to the OpenTelemetry metrics SDK, for the push readers (OTLP) a process
 * configures. Loaded only then: a process that exports nothing never loads the SDK. Counters and
 * gauges are observable instruments that read the plain fields the data path adds to, so no
 * attribute hashing happens per chunk.
 */
export class OtelMetricExport {
  private readonly provider: MeterProvider;
  private readonly meter: Meter;
  private readonly histograms = new Map<string, OtelHistogram>();

  constructor(service: string, readers: readonly MetricReader[]) {
    this.provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': service }), readers: [...readers] });
    this.meter = this.provider.getMeter('devicemesh');
  }

  observe(kind: 'counter' | 'gauge', name: string, description: string, series: ObservedSeries): void {
    const instrument = kind === 'counter' ? this.meter.createObservableCounter(name, { description }) : this.meter.createObservableGauge(name, { description });
    instrument.addCallback((result) => {
      for (const s of series.values()) result.observe(s.value, s.labels);
    });
  }

  /** A histogram of `name` that records into the SDK too; the first call of a name fixes its instrument's buckets. */
  histogram(name: string, description: string, bounds: readonly number[], labels: Labels): Histogram {
    let instrument = this.histograms.get(name);
    if (!instrument) {
      instrument = this.meter.createHistogram(name, { description, advice: { explicitBucketBoundaries: [...bounds] } });
      this.histograms.set(name, instrument);
    }
    return new ExportedHistogram(bounds, instrument, labels);
  }

  /** Exports what is pending to every reader and stops them. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
