/**
 * What the request thread hands to the OTLP worker for one gateway request: plain data (structured-clone
 * friendly). The span's identity is decided on the request thread, where its traceparent went upstream.
 */
export interface ExportItem {
  /** The request's span; absent when traces are not exported. */
  span?: {
    traceId: string;
    spanId: string;
    parentSpanId?: string;
    /** W3C tracestate of the parent, serialized. */
    traceState?: string;
    /** Parent-based: an unsampled parent keeps the trace unsampled (no span, traceparent still sent). */
    sampled: boolean;
    name: string;
    /** Epoch milliseconds (fractional). */
    startMs: number;
    endMs: number;
    error?: string;
  };
  /** The AccessLog as a log record; absent when logs are not exported. */
  log?: { body: string; severity: 'INFO' | 'WARN'; timeMs: number };
  attributes: Record<string, string | number | boolean>;
}

/**
 * Items cross to the worker as one string per batch: two lines per item, the item without the log body
 * (JSON), then the body (the AccessLog JSON text, which has no raw newline). Structured clone of many
 * small objects costs several µs per item on the request thread; copying one string costs next to nothing,
 * and the body, already JSON, is not escaped a second time.
 */
export function encodeItem(it: ExportItem): string {
  if (!it.log) return `${JSON.stringify(it)}\n`;
  const { body, ...log } = it.log;
  return `${JSON.stringify({ ...it, log })}\n${body}`;
}

export function decodeItems(text: string): ExportItem[] {
  const lines = text.split('\n');
  const out: ExportItem[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const it = JSON.parse(lines[i]) as ExportItem;
    if (it.log) it.log.body = lines[i + 1];
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
