import { logAttributes, spanError, spanName, spanOnlyAttributes, type Attributes, type LogFacts } from './attributes.js';
import type { ExportItem, ItemSpan } from './export-item.js';

/**
 * OTLP/JSON (the OTLP/HTTP JSON encoding, opentelemetry-proto's JSON mapping) built straight from export items.
 * The SDK's path — a Span or LogRecord object per request, then its transformer's OTLP object tree — is replaced
 * by one plain OTLP object per record, made when it is queued; an export request is one JSON.stringify of the
 * envelope (native, and it escapes the AccessLog text once). Building each record's JSON text with template
 * strings instead was measured 2–3× slower: the nested concatenations must be flattened again at send time.
 * The fields are the ones the SDK sent (checked against its output), so receivers see the same records.
 */

const SPAN_KIND_SERVER = 2;
const STATUS_UNSET = 0, STATUS_ERROR = 2;
const SEVERITY_INFO = 9, SEVERITY_WARN = 13;
const FLAG_SAMPLED = 0x1;
/** Span flags bits 8 and 9 (proto SpanFlags): whether the parent is remote is known, and it is. */
const FLAG_HAS_IS_REMOTE = 0x100, FLAG_IS_REMOTE = 0x200;

type AnyValue = { stringValue: string } | { boolValue: boolean } | { intValue: number } | { doubleValue: number };
type KeyValue = { key: string; value: AnyValue };
/** An OTLP span or log record, as sent. */
export type OtlpRecord = Record<string, unknown>;

function value(v: string | number | boolean): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
}

function attributes(...sets: Attributes[]): KeyValue[] {
  const out: KeyValue[] = [];
  for (const a of sets) for (const key in a) out.push({ key, value: value(a[key]) });
  return out;
}

/** Epoch milliseconds (fractional) as a decimal string of nanoseconds, exact to the microsecond, beyond 2^53. */
function unixNano(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.min(999, Math.round((ms - whole) * 1000));
  return `${whole}${String(micros).padStart(3, '0')}000`;
}

/** The span of an item (its trace was sampled), as an element of `scopeSpans[].spans`: the log's attributes, then its own. */
export function otlpSpan(s: ItemSpan, facts: LogFacts, logAttrs: Attributes = logAttributes(facts)): OtlpRecord {
  const error = spanError(facts);
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId, // undefined members are left out by JSON.stringify
    traceState: s.traceState,
    name: spanName(facts),
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: unixNano(s.startMs),
    endTimeUnixNano: unixNano(s.endMs),
    attributes: attributes(logAttrs, spanOnlyAttributes(facts)),
    droppedAttributesCount: 0,
    events: [],
    droppedEventsCount: 0,
    status: error === undefined ? { code: STATUS_UNSET } : { code: STATUS_ERROR, message: error },
    links: [],
    droppedLinksCount: 0,
    flags: FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | (s.parentSpanId ? FLAG_IS_REMOTE : 0),
  };
}

/** The AccessLog of an item as an element of `scopeLogs[].logRecords`, correlated with its span when it has one. */
export function otlpLogRecord(it: ExportItem, observedMs: number, logAttrs: Attributes = logAttributes(it.facts)): OtlpRecord {
  const s = it.span;
  const allowed = it.facts[0] === 'ALLOWED';
  return {
    timeUnixNano: unixNano(Date.parse(it.facts[13])),
    observedTimeUnixNano: unixNano(observedMs),
    severityNumber: allowed ? SEVERITY_INFO : SEVERITY_WARN,
    severityText: allowed ? 'INFO' : 'WARN',
    body: { stringValue: it.body },
    eventName: 'octelium.accesslog',
    attributes: attributes(logAttrs),
    droppedAttributesCount: 0,
    flags: s ? (s.sampled ? FLAG_SAMPLED : 0) : undefined,
    traceId: s?.traceId,
    spanId: s?.spanId,
  };
}

/** Builds export request bodies (JSON text) for one resource (`service.name`) and instrumentation scope. */
export function otlpEnvelopes(serviceName: string, scope: string): { spans(records: OtlpRecord[]): string; logs(records: OtlpRecord[]): string } {
  const resource = { attributes: attributes({ 'service.name': serviceName }), droppedAttributesCount: 0 };
  const scopeObj = { name: scope };
  return {
    spans: (spans) => JSON.stringify({ resourceSpans: [{ resource, scopeSpans: [{ scope: scopeObj, spans }] }] }),
    logs: (logRecords) => JSON.stringify({ resourceLogs: [{ resource, scopeLogs: [{ scope: scopeObj, logRecords }] }] }),
  };
}
