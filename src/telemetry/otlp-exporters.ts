/**
 * The OpenTelemetry SDK's OTLP/HTTP export: loaded by process-telemetry only when a process is
 * given a collector, so that one without never loads the SDK and its exporters.
 */
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { type MetricReader, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';

/** A tracer provider that samples `sampleRatio` of new traces (following a remote parent) and batches spans to `url`. */
export function otlpTracerProvider(service: string, sampleRatio: number, url: string): BasicTracerProvider {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampleRatio) }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 1000 })],
  });
}

/** A reader that pushes a `Stats`'s metrics to `url` every `intervalMs`. */
export function otlpMetricReader(url: string, intervalMs: number): MetricReader {
  return new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url }), exportIntervalMillis: intervalMs });
}
