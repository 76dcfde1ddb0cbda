import type { AccessLog } from '@octelium-ts/shared';
import { logFacts, type LogFacts } from './attributes.js';

/** The request's span as the request thread decided it (ids in onRequest, where its traceparent went upstream). */
export interface ItemSpan {
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
}

/**
 * What the OTLP worker gets for one gateway request: compact data the request thread read off the AccessLog
 * object it holds — the span's identity and times, the log's labelling facts (attributes.ts), and the AccessLog
 * JSON text (already redacted). The worker builds attributes and OTLP records from it; it never parses the log.
 */
export interface ExportItem {
  /** Absent when traces are not exported. */
  span?: ItemSpan;
  /** Emit the AccessLog as a log record (false when only traces are exported). */
  log: boolean;
  facts: LogFacts;
  /** The AccessLog JSON text. */
  body: string;
  /** When the worker took the item (the log record's observedTimeUnixNano); set by the OTLP pipeline. */
  observedMs?: number;
}

type Wire = [traceId: string, spanId: string, parentSpanId: string, traceState: string, sampled: 0 | 1, startMs: number, endMs: number, log: 0 | 1, ...facts: LogFacts];

/**
 * Items cross to the worker as one string per batch, two lines per item: a flat JSON array (span, then facts),
 * then the AccessLog JSON text (which has no raw newline). Structured clone of many small objects costs several µs
 * per item on the request thread; one string is copied in one go, and the body is not escaped again.
 */
export function encodeItem(span: ItemSpan | undefined, log: boolean, accessLog: AccessLog, body: string): string {
  const s = span;
  const wire: Wire = s
    ? [s.traceId, s.spanId, s.parentSpanId ?? '', s.traceState ?? '', s.sampled ? 1 : 0, s.startMs, s.endMs, log ? 1 : 0, ...logFacts(accessLog)]
    : ['', '', '', '', 0, 0, 0, log ? 1 : 0, ...logFacts(accessLog)];
  return `${JSON.stringify(wire)}\n${body}`;
}

export function decodeItems(text: string): ExportItem[] {
  const lines = text.split('\n');
  const out: ExportItem[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const w = JSON.parse(lines[i]) as Wire;
    const [traceId, spanId, parentSpanId, traceState, sampled, startMs, endMs, log] = w;
    const it: ExportItem = { log: log === 1, facts: w.slice(8) as unknown as LogFacts, body: lines[i + 1] };
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
