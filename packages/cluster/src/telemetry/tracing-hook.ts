import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayHooks } from '../gateway/deps.js';
import type { ItemSpan } from './export-item.js';
import type { OtlpWorkerClient } from './otlp-client.js';
import { serializeLog } from '../accesslog/serialize.js';
import { formatTraceParent, newSpanId, newTraceId, parseTraceParent } from './trace-context.js';

const nowMs = () => performance.timeOrigin + performance.now();

/**
 * One SERVER span per gateway request, one log record per AccessLog. On this (the request) thread only
 * the span's identity is made: in onRequest, so that its `traceparent` (a child of the client's, when
 * it sent a valid one) is in ctx.upstreamHeaders before any upstream request — direct or through the
 * tunnel — and the upstream sees the same trace id. onResponse hands the OTLP worker compact data read off
 * the AccessLog object (ids, times, a few fields, the JSON text); the worker builds, encodes and exports the records.
 */
export function tracingHooks(client: OtlpWorkerClient, o: { logs: boolean; traces: boolean }): GatewayHooks {
  // Only a tracestate header needs OpenTelemetry (its validation rules); it loads here, when OTLP export is
  // configured. Its CommonJS entry keeps this function synchronous.
  const { TraceState } = createRequire(import.meta.url)('@opentelemetry/core') as typeof import('@opentelemetry/core');
  const spans = new WeakMap<GatewayContext, ItemSpan>();
  return {
    onRequest(ctx) {
      if (!o.traces) return;
      const parent = parseTraceParent(ctx.req.headers.traceparent);
      const span: ItemSpan = {
        traceId: parent?.traceId ?? newTraceId(),
        spanId: newSpanId(),
        sampled: parent?.sampled ?? true, // parent-based, else always on
        startMs: nowMs(), // onRequest runs as the request's context is created
        endMs: 0,
      };
      // Replaced by ours (the parent's tracestate goes on when the incoming traceparent was valid).
      delete ctx.upstreamHeaders.traceparent;
      delete ctx.upstreamHeaders.tracestate;
      if (parent) {
        span.parentSpanId = parent.spanId;
        const header = ctx.req.headers.tracestate;
        const state = header ? new TraceState(Array.isArray(header) ? header.join(',') : header).serialize() : '';
        if (state) {
          span.traceState = state;
          ctx.upstreamHeaders.tracestate = state;
        }
      }
      ctx.upstreamHeaders.traceparent = formatTraceParent(span.traceId, span.spanId, span.sampled);
      spans.set(ctx, span);
    },
    onResponse(ctx, log) {
      const span = spans.get(ctx);
      spans.delete(ctx);
      if (!span && !o.logs) return;
      if (span) span.endMs = nowMs();
      client.add(span, o.logs, log, serializeLog(log));
    },
  };
}
