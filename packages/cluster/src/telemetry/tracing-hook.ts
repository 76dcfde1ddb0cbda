import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayHooks } from '../gateway/deps.js';
import type { ExportItem } from './export-item.js';
import type { OtlpWorkerClient } from './otlp-client.js';
import { serializeLog } from '../accesslog/serialize.js';

const nowMs = () => performance.timeOrigin + performance.now();

type RequestSpan = NonNullable<ExportItem['span']>;

/**
 * One SERVER span per gateway request, one log record per AccessLog. On this (the request) thread only
 * the span's identity is made: in onRequest, so that its `traceparent` (a child of the client's, when
 * it sent a valid one) is in ctx.upstreamHeaders before any upstream request — direct or through the
 * tunnel — and the upstream sees the same trace id. onResponse hands the span's ids and times and the
 * AccessLog JSON to the OTLP worker, where the SDK builds, batches and exports the span and the log record.
 */
export function tracingHooks(client: OtlpWorkerClient, o: { logs: boolean; traces: boolean }): GatewayHooks {
  // OpenTelemetry loads only here, when OTLP export is configured: a cluster without it starts faster (docs/performance.md,
  // start-up). Their CommonJS entries keep this function synchronous.
  const require = createRequire(import.meta.url);
  const { ROOT_CONTEXT, TraceFlags, defaultTextMapGetter, defaultTextMapSetter, isSpanContextValid, trace } = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
  const propagator = new (require('@opentelemetry/core') as typeof import('@opentelemetry/core')).W3CTraceContextPropagator();
  const idGenerator = new (require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base')).RandomIdGenerator();
  const spans = new WeakMap<GatewayContext, RequestSpan>();
  return {
    onRequest(ctx) {
      if (!o.traces) return;
      const parent = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, ctx.req.headers, defaultTextMapGetter));
      const valid = parent !== undefined && isSpanContextValid(parent);
      const span: RequestSpan = {
        traceId: valid ? parent.traceId : idGenerator.generateTraceId(),
        spanId: idGenerator.generateSpanId(),
        sampled: valid ? (parent.traceFlags & TraceFlags.SAMPLED) !== 0 : true, // parent-based, else always on
        startMs: nowMs(), // onRequest runs as the request's context is created
        endMs: 0,
      };
      if (valid) {
        span.parentSpanId = parent.spanId;
        const state = parent.traceState?.serialize();
        if (state) span.traceState = state;
      }
      spans.set(ctx, span);
      // Replaced by ours (tracestate comes back through the parent context when the incoming traceparent was valid).
      delete ctx.upstreamHeaders.traceparent;
      delete ctx.upstreamHeaders.tracestate;
      const sc = { traceId: span.traceId, spanId: span.spanId, traceFlags: span.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, ...(valid && parent.traceState ? { traceState: parent.traceState } : {}) };
      propagator.inject(trace.setSpanContext(ROOT_CONTEXT, sc), ctx.upstreamHeaders, defaultTextMapSetter);
    },
    onResponse(ctx, log) {
      const span = spans.get(ctx);
      spans.delete(ctx);
      if (!span && !o.logs) return;
      if (span) span.endMs = nowMs();
      client.add({ ...(span ? { span } : {}), log: o.logs, body: serializeLog(log) });
    },
  };
}
