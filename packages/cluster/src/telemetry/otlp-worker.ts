/**
 * The OTLP worker thread: runs the OpenTelemetry SDK (tracer and logger providers, bounded batches,
 * OTLP/HTTP exporters) away from the request thread, which only posts span ids, times and the AccessLog
 * JSON. Attributes, record building, JSON encoding and HTTP sends — most of the export cost — happen here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Context, type SpanContext } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { TraceState, millisToHrTime } from '@opentelemetry/core';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import type { AccessLog } from '@octelium-ts/shared';
import { logAttributes, spanAttributes, spanName } from './attributes.js';
import { decodeItems, type ExportItem, type FromWorker, type ToWorker } from './export-item.js';
import { createOtlpPipeline } from './otlp.js';
import type { ResolvedTelemetryOptions } from './options.js';

/** Hands the tracer the ids the request thread already chose (and sent upstream in traceparent). */
class GivenIds implements IdGenerator {
  traceId = '';
  spanId = '';
  generateTraceId = () => this.traceId;
  generateSpanId = () => this.spanId;
}

const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);
const ids = new GivenIds();
const pipe = createOtlpPipeline(
  workerData as NonNullable<ResolvedTelemetryOptions['otlp']>,
  (signal) => ({
    dropped: (n, reason) => send({ type: 'stats', signal, dropped: n, reason }),
    exported: (n) => send({ type: 'stats', signal, exported: n }),
  }),
  ids,
);

function record(it: ExportItem): void {
  const log = JSON.parse(it.body) as AccessLog;
  const attributes = logAttributes(log);
  let logContext: Context = ROOT_CONTEXT;
  const s = it.span;
  if (s) {
    const state = s.traceState ? new TraceState(s.traceState) : undefined;
    const ctxOf = (spanId: string, flags: TraceFlags): SpanContext => ({ traceId: s.traceId, spanId, traceFlags: flags, isRemote: true, ...(state ? { traceState: state } : {}) });
    if (s.sampled && pipe.tracer) {
      const parent = s.parentSpanId ? trace.setSpanContext(ROOT_CONTEXT, ctxOf(s.parentSpanId, TraceFlags.SAMPLED)) : ROOT_CONTEXT;
      ids.traceId = s.traceId;
      ids.spanId = s.spanId;
      const span = pipe.tracer.startSpan(spanName(log, attributes), { kind: SpanKind.SERVER, startTime: millisToHrTime(s.startMs), attributes: spanAttributes(log, attributes) }, parent);
      const code = log.entry.info.http.response.code;
      if (code >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: (log.entry.common as { error?: { code?: string } }).error?.code ?? String(code) });
      span.end(millisToHrTime(s.endMs));
      logContext = trace.setSpan(ROOT_CONTEXT, span);
    } else {
      logContext = trace.setSpanContext(ROOT_CONTEXT, ctxOf(s.spanId, s.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE));
    }
  }
  if (!it.log || !pipe.logger) return;
  const allowed = log.entry.common.status === 'ALLOWED';
  pipe.logger.emit({
    eventName: 'octelium.accesslog',
    timestamp: new Date(log.metadata.createdAt),
    severityNumber: allowed ? SeverityNumber.INFO : SeverityNumber.WARN,
    severityText: allowed ? 'INFO' : 'WARN',
    body: it.body,
    attributes,
    context: logContext,
  });
}

port.on('message', async (m: ToWorker) => {
  if (m.type === 'items') {
    let failed = 0;
    for (const it of decodeItems(m.text)) {
      try {
        record(it);
      } catch {
        failed++; // one bad item must not stop the worker
      }
    }
    if (failed) send({ type: 'stats', signal: 'logs', dropped: failed, reason: 'export_failed' });
    send({ type: 'ack', n: m.count });
  } else if (m.type === 'flush') {
    await pipe.flush();
    send({ type: 'done', id: m.id });
  } else if (m.type === 'shutdown') {
    await pipe.shutdown();
    send({ type: 'done', id: m.id });
  }
});
