import { trace } from '@opentelemetry/api';
import type { MetricReader } from '@opentelemetry/sdk-metrics';
import type { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { ValidationError } from '../errors';
import type { StatsOptions } from './stats';

export interface TelemetryConfig {
  /** `service.name` on every span and metric, e.g. devicemesh-agent. */
  service: string;
  /** OTLP/HTTP base URL (…:4318); `/v1/traces` and `/v1/metrics` are appended. Unset: no export. */
  otlpEndpoint?: string;
  /** Share of new traces sampled, 0..1; a remote parent's decision is followed. */
  sampleRatio: number;
  /** How often metrics are pushed by OTLP, ms. */
  metricIntervalMs?: number;
}

interface Active {
  config: TelemetryConfig;
  tracerProvider: BasicTracerProvider | undefined;
  readers: MetricReader[];
}

let active: Active | undefined;

/**
 * Sets up this process's OTLP export: the global tracer provider (what `meshTracer()` returns) and
 * the metric readers later `Stats` instances take through `processStatsOptions()`. Without an
 * endpoint nothing is registered, spans stay no-ops, which cost next to nothing, and the SDK is
 * never loaded.
 */
export function startProcessTelemetry(config: TelemetryConfig): void {
  if (!(config.sampleRatio >= 0 && config.sampleRatio <= 1)) {
    throw new ValidationError('--trace-sample-ratio', `must be between 0 and 1, got ${config.sampleRatio}`);
  }
  if (config.otlpEndpoint === undefined) {
    active = { config, tracerProvider: undefined, readers: [] };
    return;
  }
  let base: URL;
  try {
    base = new URL(config.otlpEndpoint);
  } catch {
    throw new ValidationError('--otlp-endpoint', `"${config.otlpEndpoint}" is not a URL (e.g. http://127.0.0.1:4318)`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new ValidationError('--otlp-endpoint', `"${config.otlpEndpoint}" must be http or https`);
  }
  const tracerProvider = exporters().otlpTracerProvider(config.service, config.sampleRatio, endpointUrl(base, 'v1/traces'));
  trace.setGlobalTracerProvider(tracerProvider);
  active = { config, tracerProvider, readers: [] };
}

/** What a process's `Stats` needs to export as configured: its service name and an OTLP reader. */
export function processStatsOptions(): StatsOptions {
  if (!active) return {};
  if (active.config.otlpEndpoint === undefined) return { service: active.config.service };
  const reader = exporters().otlpMetricReader(endpointUrl(new URL(active.config.otlpEndpoint), 'v1/metrics'), active.config.metricIntervalMs ?? 10_000);
  active.readers.push(reader);
  return { service: active.config.service, readers: [reader] };
}

/** Exports what is pending and stops exporting; for a process's shutdown. */
export async function stopProcessTelemetry(): Promise<void> {
  const current = active;
  active = undefined;
  if (!current) return;
  await Promise.allSettled([current.tracerProvider?.shutdown(), ...current.readers.map((r) => r.shutdown())]);
  if (current.tracerProvider) trace.disable();
}

/** The SDK and its OTLP exporters, required only once a collector is configured (they are most of a process's modules). */
function exporters(): typeof import('./otlp-exporters') {
  return require('./otlp-exporters') as typeof import('./otlp-exporters');
}

function endpointUrl(base: URL, path: string): string {
  return new URL(path, base.href.endsWith('/') ? base.href : `${base.href}/`).href;
}
