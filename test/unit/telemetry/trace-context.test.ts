import { strict as assert } from 'node:assert';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ValidationError } from '../../../src/errors';
import { startProcessTelemetry, stopProcessTelemetry } from '../../../src/telemetry/process-telemetry';
import { contextFromTraceparent, traceparentOf } from '../../../src/telemetry/trace-context';

describe('telemetry: trace context across processes', () => {
  it('continues a span from its traceparent: same trace, the remote span as parent', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = provider.getTracer('test');
    const sidecar = tracer.startSpan('app connection');
    const traceparent = traceparentOf(sidecar);
    assert.ok(traceparent, 'a recording span has a traceparent');
    assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const agent = tracer.startSpan('device command', {}, contextFromTraceparent(traceparent));
    agent.end();
    sidecar.end();
    const [a] = exporter.getFinishedSpans();
    assert.equal(a?.spanContext().traceId, sidecar.spanContext().traceId);
    assert.equal(a?.parentSpanContext?.spanId, sidecar.spanContext().spanId);
  });

  it('has no traceparent for a span that is not recorded, and a new trace without one', () => {
    assert.equal(traceparentOf(trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 })), undefined);
    assert.equal(trace.getSpan(contextFromTraceparent(undefined)), undefined);
  });

  it('refuses a sample ratio outside 0..1 and an endpoint that is not an http URL', async () => {
    assert.throws(() => startProcessTelemetry({ service: 's', sampleRatio: 1.5 }), ValidationError);
    assert.throws(() => startProcessTelemetry({ service: 's', sampleRatio: 1, otlpEndpoint: 'not a url' }), ValidationError);
    assert.throws(() => startProcessTelemetry({ service: 's', sampleRatio: 1, otlpEndpoint: 'ftp://x' }), ValidationError);
    await stopProcessTelemetry();
  });
});
