import { performance } from 'node:perf_hooks';
import { ROOT_CONTEXT, TraceFlags, defaultTextMapGetter, defaultTextMapSetter, isSpanContextValid, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import type { AccessLog } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayHooks } from '../gateway/deps.js';
import type { ExportItem } from './export-item.js';
import { mcpInfo } from './mcp-info.js';
import type { OtlpWorkerClient } from './otlp-client.js';

const propagator = new W3CTraceContextPropagator();
const idGenerator = new RandomIdGenerator();
const nowMs = () => performance.timeOrigin + performance.now();

/** The attributes both a span and a log record carry (from the already-redacted AccessLog). */
export function accessLogAttributes(log: AccessLog): ExportItem['attributes'] {
  const c = log.entry.common;
  const http = log.entry.info.http;
  const mcp = mcpInfo(log);
  const a: ExportItem['attributes'] = {
    status: c.status,
    'octelium.reason': c.reason.type,
    'octelium.request_id': log.metadata.id,
    'http.request.method': http.request.method,
    'http.response.status_code': http.response.code,
    'url.path': http.request.path,
  };
  if (c.userRef?.name) a.user = c.userRef.name;
  if (c.serviceRef?.name) a.service = c.serviceRef.name;
  if (c.namespaceRef?.name) a.namespace = c.namespaceRef.name;
  if (c.sessionRef?.name) a['octelium.session'] = c.sessionRef.name;
  if (mcp.method) a['mcp.method'] = mcp.method;
  if (mcp.tool) a['mcp.tool'] = mcp.tool;
  return a;
}

type RequestSpan = NonNullable<ExportItem['span']>;

/**
 * One SERVER span per gateway request, one log record per AccessLog. On this (the request) thread only
 * the span's identity is made: in onRequest, so that its `traceparent` (a child of the client's, when
 * it sent a valid one) is in ctx.upstreamHeaders before any upstream request — direct or through the
 * tunnel — and the upstream sees the same trace id. onResponse hands plain data to the OTLP worker,
 * where the SDK builds, batches and exports the span and the log record.
 */
export function tracingHooks(client: OtlpWorkerClient, o: { logs: boolean; traces: boolean }): GatewayHooks {
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
        name: `${ctx.req.method ?? 'GET'} ${ctx.serviceName}`,
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
      const attributes = accessLogAttributes(log);
      const item: ExportItem = { attributes };
      if (span) {
        span.endMs = nowMs();
        if (attributes['mcp.method']) span.name = `${attributes['mcp.method']}${attributes['mcp.tool'] ? ` ${attributes['mcp.tool']}` : ''}`;
        if (log.entry.info.http.response.code >= 500) span.error = ctx.error?.code ?? String(log.entry.info.http.response.code);
        item.span = span;
      }
      if (o.logs) item.log = { body: JSON.stringify(log), severity: log.entry.common.status === 'ALLOWED' ? 'INFO' : 'WARN', timeMs: Date.parse(log.metadata.createdAt) };
      client.add(item);
    },
  };
}
