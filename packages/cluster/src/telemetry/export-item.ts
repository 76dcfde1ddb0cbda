/**
 * What the request thread hands to the OTLP worker for one gateway request. The request thread does the
 * least it can: the span's identity (decided in onRequest, where its traceparent went upstream), two
 * timestamps, and the AccessLog JSON text (already redacted). The worker derives everything else —
 * attributes, span name, status, severity — from that text.
 */
export interface ExportItem {
  /** The request's span; absent when traces are not exported. */
  span?: {
    traceId: string;
    spanId: string;
    parentSpanId?: string;
    /** W3C tracestate of the parent, serialized. */
    traceState?: string;
    /** Parent-based: an unsampled parent keeps the trace unsampled (no span; the traceparent still went upstream). */
    sampled: boolean;
    /** Epoch milliseconds (fractional). */
    startMs: number;
    endMs: number;
  };
  /** Emit the AccessLog as a log record (false when only traces are exported). */
  log: boolean;
  /** The AccessLog JSON text. */
  body: string;
}

type Wire = [traceId: string, spanId: string, parentSpanId: string, traceState: string, sampled: 0 | 1, startMs: number, endMs: number, log: 0 | 1];

/**
 * Items cross to the worker as one string per batch, two lines per item: a small JSON tuple, then the
 * AccessLog JSON text (which has no raw newline). Structured clone of many small objects costs several µs
 * per item on the request thread; one string is copied in one go, and the body is not escaped again.
 */
export function encodeItem(it: ExportItem): string {
  const s = it.span;
  const wire: Wire = s ? [s.traceId, s.spanId, s.parentSpanId ?? '', s.traceState ?? '', s.sampled ? 1 : 0, s.startMs, s.endMs, it.log ? 1 : 0] : ['', '', '', '', 0, 0, 0, it.log ? 1 : 0];
  return `${JSON.stringify(wire)}\n${it.body}`;
}

export function decodeItems(text: string): ExportItem[] {
  const lines = text.split('\n');
  const out: ExportItem[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [traceId, spanId, parentSpanId, traceState, sampled, startMs, endMs, log] = JSON.parse(lines[i]) as Wire;
    const it: ExportItem = { log: log === 1, body: lines[i + 1] };
    if (traceId) {
      it.span = { traceId, spanId, sampled: sampled === 1, startMs, endMs };
      if (parentSpanId) it.span.parentSpanId = parentSpanId;
      if (traceState) it.span.traceState = traceState;
    }
    out.push(it);
  }
  return out;
}

export type ToWorker =
  | { type: 'items'; text: string; count: number }
  | { type: 'flush'; id: number }
  | { type: 'shutdown'; id: number };

export type FromWorker =
  | { type: 'ack'; n: number }
  | { type: 'stats'; signal: 'logs' | 'traces'; exported?: number; dropped?: number; reason?: 'queue_full' | 'export_failed' }
  | { type: 'done'; id: number };
