import { type Context, context, ROOT_CONTEXT, type Span, trace, type Tracer } from '@opentelemetry/api';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';

let loaded: W3CTraceContextPropagator | undefined;

/**
 * Loaded at the first traceparent to write or read: only a process that traces (an SDK
 * registered, or a peer that sends one) needs @opentelemetry/core.
 */
function propagator(): W3CTraceContextPropagator {
  loaded ??= new (require('@opentelemetry/core') as typeof import('@opentelemetry/core')).W3CTraceContextPropagator();
  return loaded;
}

/** The tracer every devicemesh span comes from: a no-op until a process registers a provider. */
export function meshTracer(): Tracer {
  return trace.getTracer('devicemesh');
}

/** The traceparent that continues `span` in another process; undefined when it is not sampled or recorded. */
export function traceparentOf(span: Span): string | undefined {
  if (!span.isRecording()) return undefined;
  const carrier: Record<string, string> = {};
  propagator().inject(trace.setSpan(context.active(), span), carrier, {
    set: (c, key, value) => {
      c[key] = value;
    },
  });
  return carrier.traceparent;
}

/** The context a span started in this process continues from: the remote parent, or a new trace. */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  if (traceparent === undefined) return ROOT_CONTEXT;
  return propagator().extract(ROOT_CONTEXT, { traceparent }, { get: (c, key) => c[key], keys: (c) => Object.keys(c) });
}
