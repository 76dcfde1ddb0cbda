import { logAttributes, spanError, spanName, spanOnlyAttributes, type Attributes, type LogFacts } from './attributes.js';
import type { ByteBuffer } from './byte-buffer.js';
import { itemFacts, type ExportItem } from './export-item.js';
import { BoundedMap } from '@octelium-ts/shared';

/**
 * OTLP/JSON (the OTLP/HTTP JSON encoding, opentelemetry-proto's JSON mapping) written straight from export items
 * into an export request's bytes. The fields, their order and their values are the ones the OpenTelemetry SDK
 * sent (telemetry-otlp-encoding.test.ts compares the text with JSON.stringify of the SDK-shaped objects).
 *
 * Why text and not objects: building an OTLP object tree per record and one JSON.stringify per batch cost the
 * worker ~13 µs per request, most of it serializing ~100 small keys and values per request (a span has 12
 * attributes, each `{key, value: {stringValue}}`). Those parts depend on a few AccessLog fields that repeat from
 * request to request (status, code, user, Service, MCP method and tool, HTTP method, path, reason), so each
 * distinct combination — a record "shape" — is serialized once and cached; per request only the ids, times,
 * request id, session and the AccessLog body are serialized. (The session before this one found template strings
 * per record 2–3× slower than one JSON.stringify: every attribute was still formatted per record, and the nested
 * concatenations were flattened again at send time. Here the cached parts are flat, and each record is written
 * into the request's bytes as soon as it is formatted.)
 */

const SPAN_KIND_SERVER = 2;
const STATUS_UNSET = 0, STATUS_ERROR = 2;
const SEVERITY_INFO = 9, SEVERITY_WARN = 13;
const FLAG_SAMPLED = 0x1;
/** Span flags bits 8 and 9 (proto SpanFlags): whether the parent is remote is known, and it is. */
const FLAG_HAS_IS_REMOTE = 0x100, FLAG_IS_REMOTE = 0x200;

/** Distinct shapes kept; past it the cache starts over (a burst of distinct paths costs a re-serialization, not memory). */
const MAX_SHAPES = 256;

type AnyValue = { stringValue: string } | { boolValue: boolean } | { intValue: number } | { doubleValue: number };
type KeyValue = { key: string; value: AnyValue };

function value(v: string | number | boolean): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
}

/** The JSON of an AnyValue (a string, the common case, without building the object). */
function valueJson(v: string | number | boolean): string {
  return typeof v === 'string' ? `{"stringValue":${JSON.stringify(v)}}` : JSON.stringify(value(v));
}

export function attributes(...sets: Attributes[]): KeyValue[] {
  const out: KeyValue[] = [];
  for (const a of sets) for (const key in a) out.push({ key, value: value(a[key]) });
  return out;
}

/** The attributes' JSON without the enclosing brackets. */
function attributesJson(a: Attributes): string {
  return JSON.stringify(attributes(a)).slice(1, -1);
}

/**
 * Epoch milliseconds (fractional) as a decimal string of nanoseconds, to the microsecond: nanoseconds are beyond
 * 2^53, microseconds are not (until the year 2255). A time that is not a number (an unreadable createdAt) is 0,
 * which receivers accept, rather than text that would get the whole batch refused.
 */
export function unixNano(ms: number): string {
  const micros = Math.round(ms * 1000);
  return Number.isFinite(micros) && micros >= 0 ? `${micros}000` : '0';
}

/** The serialized parts of a span and a log record that depend only on an item's labels (export-item.ts). */
interface Shape {
  /** `,"name":…,"kind":2,"startTimeUnixNano":"` */
  spanName: string;
  /** The span's attributes up to the request id's value: the log's, then method, path, reason. */
  spanAttrs: string;
  /** After the attributes, up to the flags' value. */
  spanStatus: string;
  /** `","severityNumber":…,"body":{"stringValue":` (closes observedTimeUnixNano). */
  logSeverity: string;
  /** The log record's attributes, without brackets. */
  logAttrs: string;
}

function makeShape(f: LogFacts): Shape {
  const logAttrs = attributesJson(logAttributes(f));
  // The span's own attributes but the two that differ per request (written per span, after these).
  const spanOnly = spanOnlyAttributes(f);
  delete spanOnly['octelium.request_id'];
  delete spanOnly['octelium.session'];
  const error = spanError(f);
  const allowed = f[0] === 'ALLOWED';
  const status = error === undefined ? { code: STATUS_UNSET } : { code: STATUS_ERROR, message: error };
  return {
    spanName: `,"name":${JSON.stringify(spanName(f))},"kind":${SPAN_KIND_SERVER},"startTimeUnixNano":"`,
    spanAttrs: [logAttrs, attributesJson(spanOnly), '{"key":"octelium.request_id","value":'].filter(Boolean).join(','),
    spanStatus: `,"droppedAttributesCount":0,"events":[],"droppedEventsCount":0,"status":${JSON.stringify(status)},"links":[],"droppedLinksCount":0,"flags":`,
    logSeverity: `","severityNumber":${allowed ? SEVERITY_INFO : SEVERITY_WARN},"severityText":"${allowed ? 'INFO' : 'WARN'}","body":{"stringValue":`,
    logAttrs,
  };
}

/** Writes export request bodies (OTLP/JSON) for one resource (`service.name`) and instrumentation scope. */
export class OtlpJsonEncoder {
  readonly #shapes = new BoundedMap<string, Shape>(MAX_SHAPES);
  readonly #spansHead: string;
  readonly #logsHead: string;
  #lastCreatedAt = '';
  #lastCreatedNano = '';
  #lastObservedMs = NaN;
  #lastObservedNano = '';

  constructor(serviceName: string, scope: string) {
    const resource = JSON.stringify({ attributes: attributes({ 'service.name': serviceName }), droppedAttributesCount: 0 });
    const scopeJson = JSON.stringify({ name: scope });
    this.#spansHead = `{"resourceSpans":[{"resource":${resource},"scopeSpans":[{"scope":${scopeJson},"spans":[`;
    this.#logsHead = `{"resourceLogs":[{"resource":${resource},"scopeLogs":[{"scope":${scopeJson},"logRecords":[`;
  }

  /** Keyed by the labels' JSON text, as the request thread wrote it: no key to build, and no two label lists share one. */
  #shape(it: ExportItem): Shape {
    let s = this.#shapes.get(it.labels);
    if (!s) {
      this.#shapes.set(it.labels, (s = makeShape(itemFacts(it))));
    }
    return s;
  }

  /** The log time: consecutive AccessLogs are often made in the same millisecond, so the last one is kept. */
  #timeUnixNano(createdAt: string): string {
    if (createdAt !== this.#lastCreatedAt) {
      this.#lastCreatedAt = createdAt;
      this.#lastCreatedNano = unixNano(Date.parse(createdAt));
    }
    return this.#lastCreatedNano;
  }

  #observedUnixNano(ms: number): string {
    if (ms !== this.#lastObservedMs) {
      this.#lastObservedMs = ms;
      this.#lastObservedNano = unixNano(ms);
    }
    return this.#lastObservedNano;
  }

  /** An ExportTraceServiceRequest with the items' spans (each item must have one). */
  spans(items: readonly ExportItem[], out: ByteBuffer): void {
    out.write(this.#spansHead);
    for (let i = 0; i < items.length; i++) {
      const it = items[i], s = it.span!, sh = this.#shape(it), session = it.session;
      // traceId and spanId are lowercase hex by construction (trace-context.ts makes or validates them); the
      // parent's id and tracestate are escaped anyway, as everything that came from a client is.
      out.write(
        `${i ? ',' : ''}{"traceId":"${s.traceId}","spanId":"${s.spanId}"${s.parentSpanId !== undefined ? `,"parentSpanId":${JSON.stringify(s.parentSpanId)}` : ''}` +
          `${s.traceState !== undefined ? `,"traceState":${JSON.stringify(s.traceState)}` : ''}${sh.spanName}${unixNano(s.startMs)}","endTimeUnixNano":"${unixNano(s.endMs)}"` +
          `,"attributes":[${sh.spanAttrs}${valueJson(it.requestId)}}${session ? `,{"key":"octelium.session","value":${valueJson(session)}}` : ''}]` +
          `${sh.spanStatus}${FLAG_SAMPLED | FLAG_HAS_IS_REMOTE | (s.parentSpanId ? FLAG_IS_REMOTE : 0)}}`,
      );
    }
    out.write(']}]}]}');
  }

  /** An ExportLogsServiceRequest with the items' AccessLogs, correlated with their spans when they have one. */
  logs(items: readonly ExportItem[], out: ByteBuffer): void {
    out.write(this.#logsHead);
    for (let i = 0; i < items.length; i++) {
      const it = items[i], s = it.span, sh = this.#shape(it);
      out.write(`${i ? ',' : ''}{"timeUnixNano":"${this.#timeUnixNano(it.createdAt)}","observedTimeUnixNano":"${this.#observedUnixNano(it.observedMs ?? Date.now())}${sh.logSeverity}`);
      out.write(JSON.stringify(it.body)); // most of the request's bytes: written on its own, not copied into a longer string first
      out.write(
        `},"eventName":"octelium.accesslog","attributes":[${sh.logAttrs}],"droppedAttributesCount":0` +
          `${s ? `,"flags":${s.sampled ? FLAG_SAMPLED : 0},"traceId":"${s.traceId}","spanId":"${s.spanId}"` : ''}}`,
      );
    }
    out.write(']}]}]}');
  }
}
