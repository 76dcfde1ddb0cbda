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
  /**
   * The facts that label the records and repeat from request to request (LogFacts but request id, session and
   * creation time), as a JSON array. Kept as that text: the worker's encoder caches what it serialized from them
   * under it, and parses it only for a combination it has not seen (otlp-json.ts).
   */
  labels: string;
  requestId: string;
  session: string;
  /** metadata.createdAt (ISO 8601). */
  createdAt: string;
  /** The AccessLog JSON text. */
  body: string;
  /** When the worker took the item (the log record's observedTimeUnixNano); set by the OTLP pipeline. */
  observedMs?: number;
}

type Labels = [status: string, code: number, user: string, service: string, namespace: string, mcpMethod: string, mcpTool: string, httpMethod: string, path: string, reason: string, errorCode: string];
type Wire = [traceId: string, spanId: string, parentSpanId: string, traceState: string, sampled: 0 | 1, startMs: number, endMs: number, log: 0 | 1, requestId: string, session: string, createdAt: string];

function labelsOf(f: LogFacts): Labels {
  return [f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[12]];
}

/** An item from the facts (tests; the request thread goes through encodeItem). */
export function exportItem(span: ItemSpan | undefined, log: boolean, f: LogFacts, body: string, observedMs?: number): ExportItem {
  const it: ExportItem = { log, labels: JSON.stringify(labelsOf(f)), requestId: f[10], session: f[11], createdAt: f[13], body, observedMs };
  if (span) it.span = span;
  return it;
}

/** An item's facts, in LogFacts order (what the attributes of a new label combination are made from). */
export function itemFacts(it: ExportItem): LogFacts {
  const [status, code, user, service, namespace, mcpMethod, mcpTool, method, path, reason, errorCode] = JSON.parse(it.labels) as Labels;
  return [status, code, user, service, namespace, mcpMethod, mcpTool, method, path, reason, it.requestId, it.session, errorCode, it.createdAt];
}

/**
 * Items cross to the worker as one string per batch, three lines per item: a flat JSON array (the span and the
 * per-request facts), the labels' JSON array, then the AccessLog JSON text (none has a raw newline). Structured
 * clone of many small objects costs several µs per item on the request thread; one string is copied in one go,
 * and the body is not escaped again.
 */
export function encodeItem(span: ItemSpan | undefined, log: boolean, accessLog: AccessLog, body: string): string {
  const s = span, f = logFacts(accessLog);
  const wire: Wire = s
    ? [s.traceId, s.spanId, s.parentSpanId ?? '', s.traceState ?? '', s.sampled ? 1 : 0, s.startMs, s.endMs, log ? 1 : 0, f[10], f[11], f[13]]
    : ['', '', '', '', 0, 0, 0, log ? 1 : 0, f[10], f[11], f[13]];
  return `${JSON.stringify(wire)}\n${JSON.stringify(labelsOf(f))}\n${body}`;
}

/** The items of a batch; one that cannot be read (never expected: the request thread wrote them) is left out. */
export function decodeItems(text: string): ExportItem[] {
  const lines = text.split('\n');
  const out: ExportItem[] = [];
  for (let i = 0; i + 2 < lines.length; i += 3) {
    let wire: Wire;
    try {
      wire = JSON.parse(lines[i]) as Wire;
    } catch {
      continue;
    }
    const [traceId, spanId, parentSpanId, traceState, sampled, startMs, endMs, log, requestId, session, createdAt] = wire;
    const it: ExportItem = { log: log === 1, labels: lines[i + 1], requestId, session, createdAt, body: lines[i + 2] };
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
