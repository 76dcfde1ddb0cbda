import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Attributes, type Span } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { AccessLog } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { GatewayHooks } from '../gateway/deps.js';
import { mcpInfo } from './mcp-info.js';
import type { OtlpPipeline } from './otlp.js';

const propagator = new W3CTraceContextPropagator();

/** The attributes both a span and a log record carry (from the already-redacted AccessLog). */
export function accessLogAttributes(log: AccessLog): Attributes {
  const c = log.entry.common;
  const http = log.entry.info.http;
  const mcp = mcpInfo(log);
  const a: Attributes = {
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

/**
 * One SERVER span per gateway request, and one log record per AccessLog. The span starts in onRequest so
 * its `traceparent` (child of the client's, when it sent a valid one) is in ctx.upstreamHeaders before
 * any upstream request — direct or through the tunnel — is made; the upstream sees the same trace id.
 */
export function tracingHooks(pipe: OtlpPipeline): GatewayHooks {
  const spans = new WeakMap<GatewayContext, Span>();
  const { tracer, logger } = pipe;
  return {
    onRequest(ctx) {
      if (!tracer) return;
      const parent = propagator.extract(ROOT_CONTEXT, ctx.req.headers, defaultTextMapGetter);
      const span = tracer.startSpan(`${ctx.req.method ?? 'GET'} ${ctx.serviceName}`, { kind: SpanKind.SERVER, startTime: ctx.startedAt }, parent);
      spans.set(ctx, span);
      // Replaced by ours (tracestate comes back through the parent context when the incoming traceparent was valid).
      delete ctx.upstreamHeaders.traceparent;
      delete ctx.upstreamHeaders.tracestate;
      propagator.inject(trace.setSpan(parent, span), ctx.upstreamHeaders, defaultTextMapSetter);
    },
    onResponse(ctx, log) {
      const attributes = accessLogAttributes(log);
      const span = spans.get(ctx);
      if (span) {
        spans.delete(ctx);
        span.setAttributes(attributes);
        if (attributes['mcp.method']) span.updateName(`${attributes['mcp.method']}${attributes['mcp.tool'] ? ` ${attributes['mcp.tool']}` : ''}`);
        if (log.entry.info.http.response.code >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.error?.code });
        span.end();
      }
      logger?.emit({
        eventName: 'octelium.accesslog',
        timestamp: new Date(log.metadata.createdAt),
        severityNumber: log.entry.common.status === 'ALLOWED' ? SeverityNumber.INFO : SeverityNumber.WARN,
        severityText: log.entry.common.status === 'ALLOWED' ? 'INFO' : 'WARN',
        body: JSON.stringify(log),
        attributes,
        context: span ? trace.setSpan(ROOT_CONTEXT, span) : ROOT_CONTEXT,
      });
    },
  };
}
