import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * A minimal OTLP/HTTP receiver for the JSON encoding (what this cluster's exporters send): enough to
 * check an export end to end in tests and benches, or to watch a local cluster without a collector.
 * Not a collector: it keeps everything in memory.
 */

interface AnyValue {
  stringValue?: string; boolValue?: boolean; intValue?: number | string; doubleValue?: number; bytesValue?: string;
  arrayValue?: { values?: AnyValue[] }; kvlistValue?: { values?: KeyValue[] };
}
interface KeyValue { key: string; value?: AnyValue }

export function decodeAnyValue(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(decodeAnyValue);
  if (v.kvlistValue) return decodeAttributes(v.kvlistValue.values);
  return undefined;
}

export function decodeAttributes(kvs: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, decodeAnyValue(kv.value)]));
}

export interface ReceivedLog { body: unknown; attributes: Record<string, unknown>; traceId?: string; spanId?: string; severityText?: string; eventName?: string; resource: Record<string, unknown> }
export interface ReceivedSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: Record<string, unknown>; status?: { code?: number; message?: string }; resource: Record<string, unknown> }

interface LogsPayload { resourceLogs?: Array<{ resource?: { attributes?: KeyValue[] }; scopeLogs?: Array<{ logRecords?: Array<{ body?: AnyValue; attributes?: KeyValue[]; traceId?: string; spanId?: string; severityText?: string; eventName?: string }> }> }> }
interface TracesPayload { resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: KeyValue[]; status?: { code?: number; message?: string } }> }> }> }

export interface OtlpReceiver {
  url: string;
  /** Raw request bodies as received, per path (to check that nothing secret was ever sent). */
  raw: Array<{ path: string; text: string }>;
  logs: ReceivedLog[];
  spans: ReceivedSpan[];
  /** Answer exports after this many ms (simulates a slow backend); 0 by default. */
  delayMs: number;
  /** HTTP status to answer with (e.g. 500 to simulate a failing backend); 200 by default. */
  status: number;
  /** Export requests and bytes received (also counted when `store` is off). */
  counts: { requests: number; bytes: number };
  close(): Promise<void>;
}

/** `store: false` only counts requests and bytes (a long benchmark would otherwise keep every payload in memory). */
export async function startOtlpReceiver(opts: { port?: number; host?: string; store?: boolean } = {}): Promise<OtlpReceiver> {
  const keep = opts.store ?? true;
  const r: Omit<OtlpReceiver, 'url' | 'close'> = { raw: [], logs: [], spans: [], delayMs: 0, status: 200, counts: { requests: 0, bytes: 0 } };
  const server: Server = createServer(async (req, res) => {
    const gzipped = req.headers['content-encoding'] === 'gzip';
    // Count-only, an uncompressed body is only counted, not gathered and copied into one buffer: a benchmark
    // measures the cluster's exporter, and this receiver runs on the same machine.
    const gather = keep || gzipped;
    const chunks: Buffer[] = [];
    let received = 0;
    for await (const c of req) {
      received += (c as Buffer).length;
      if (gather) chunks.push(c as Buffer);
    }
    let buf = gather ? Buffer.concat(chunks) : Buffer.alloc(0);
    if (gzipped) buf = gunzipSync(buf);
    const bytes = gzipped ? buf.length : received;
    const text = keep ? buf.toString('utf8') : '';
    const path = (req.url ?? '').split('?')[0];
    if (r.delayMs) await new Promise((ok) => setTimeout(ok, r.delayMs));
    if (r.status !== 200) {
      res.writeHead(r.status, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    r.counts.requests++;
    r.counts.bytes += bytes;
    // Count-only mode answers without parsing, so a benchmark measures the exporter, not this receiver.
    if (!keep) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    r.raw.push({ path, text });
    try {
      const json = JSON.parse(text) as LogsPayload & TracesPayload;
      for (const rl of json.resourceLogs ?? []) {
        const resource = decodeAttributes(rl.resource?.attributes);
        for (const sl of rl.scopeLogs ?? []) {
          for (const l of sl.logRecords ?? []) {
            r.logs.push({ body: decodeAnyValue(l.body), attributes: decodeAttributes(l.attributes), traceId: l.traceId || undefined, spanId: l.spanId || undefined, severityText: l.severityText, eventName: l.eventName, resource });
          }
        }
      }
      for (const rs of json.resourceSpans ?? []) {
        const resource = decodeAttributes(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            r.spans.push({ traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, kind: s.kind, attributes: decodeAttributes(s.attributes), status: s.status, resource });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"not OTLP JSON"}');
    }
  });
  await new Promise<void>((ok) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', ok));
  const receiver = r as OtlpReceiver;
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  };
  return receiver;
}
