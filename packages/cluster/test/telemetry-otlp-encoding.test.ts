import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeAttributes } from '../src/telemetry/otlp-receiver.js';
import { envGzip, envHeaders, OtlpHttpSender } from '../src/telemetry/otlp-http.js';
import { attributes, OtlpJsonEncoder, unixNano } from '../src/telemetry/otlp-json.js';
import { ByteBuffer } from '../src/telemetry/byte-buffer.js';
import { formatTraceParent, newSpanId, newTraceId, parseTraceParent } from '../src/telemetry/trace-context.js';
import type { AccessLog } from '@octelium-ts/shared';
import { logAttributes, spanError, spanName, spanOnlyAttributes, type LogFacts } from '../src/telemetry/attributes.js';
import { decodeItems, encodeItem, exportItem, itemFacts, type ExportItem, type ItemSpan } from '../src/telemetry/export-item.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736', S = '00f067aa0ba902b7';

test('traceparent: the W3C propagator rules (version ff and extra fields on 00 refused, zero ids refused, later versions accepted)', () => {
  assert.deepEqual(parseTraceParent(`00-${T}-${S}-01`), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseTraceParent([`00-${T}-${S}-00`, 'ignored']), { traceId: T, spanId: S, sampled: false });
  assert.deepEqual(parseTraceParent(`cc-${T}-${S}-09-future`), { traceId: T, spanId: S, sampled: true });
  for (const bad of [`ff-${T}-${S}-01`, `00-${T}-${S}-01-extra`, `00-${'0'.repeat(32)}-${S}-01`, `00-${T}-${'0'.repeat(16)}-01`, `00-${T.toUpperCase()}-${S}-01`, '00-zzzz-1234-01', '', undefined]) {
    assert.equal(parseTraceParent(bad), undefined, String(bad));
  }
  assert.equal(formatTraceParent(T, S, true), `00-${T}-${S}-01`);
  const ids = new Set(Array.from({ length: 1000 }, () => newSpanId()));
  assert.equal(ids.size, 1000);
  assert.match(newTraceId(), /^[0-9a-f]{32}$/);
  assert.match([...ids][0], /^[0-9a-f]{16}$/);
});

/**
 * The OTLP objects the OpenTelemetry SDK sent (its transformer's output, checked field by field when the SDK was
 * replaced), built the plain way: the encoder's text must be exactly their JSON.stringify.
 */
const reference = {
  span(s: ItemSpan, f: LogFacts) {
    const error = spanError(f);
    return {
      traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId, traceState: s.traceState, name: spanName(f), kind: 2,
      startTimeUnixNano: unixNano(s.startMs), endTimeUnixNano: unixNano(s.endMs), attributes: attributes(logAttributes(f), spanOnlyAttributes(f)),
      droppedAttributesCount: 0, events: [], droppedEventsCount: 0, status: error === undefined ? { code: 0 } : { code: 2, message: error },
      links: [], droppedLinksCount: 0, flags: 0x101 | (s.parentSpanId ? 0x200 : 0),
    };
  },
  log(it: ExportItem) {
    const s = it.span, f = itemFacts(it), allowed = f[0] === 'ALLOWED';
    return {
      timeUnixNano: unixNano(Date.parse(f[13])), observedTimeUnixNano: unixNano(it.observedMs!), severityNumber: allowed ? 9 : 13, severityText: allowed ? 'INFO' : 'WARN',
      body: { stringValue: it.body }, eventName: 'octelium.accesslog', attributes: attributes(logAttributes(f)), droppedAttributesCount: 0,
      flags: s ? (s.sampled ? 1 : 0) : undefined, traceId: s?.traceId, spanId: s?.spanId,
    };
  },
  envelope(kind: 'spans' | 'logs', records: unknown[]) {
    const resource = { attributes: attributes({ 'service.name': 'octelium-cluster' }), droppedAttributesCount: 0 }, scope = { name: 'octelium-ts/gateway' };
    return JSON.stringify(kind === 'spans' ? { resourceSpans: [{ resource, scopeSpans: [{ scope, spans: records }] }] } : { resourceLogs: [{ resource, scopeLogs: [{ scope, logRecords: records }] }] });
  },
};

function encode(enc: OtlpJsonEncoder, kind: 'spans' | 'logs', items: ExportItem[], out = new ByteBuffer(16)): string {
  out.reset();
  enc[kind](items, out);
  return out.bytes().toString('utf8');
}

test('OTLP/JSON: spans and log records carry the fields the SDK sent (ids, flags, nanosecond times, status, attributes)', () => {
  const facts: LogFacts = ['DENIED', 502, 'u', 's', 'default', 'tools/call', 'add', 'POST', '/mcp', 'POLICY', 'req-1', 'sess', 'UPSTREAM_FAILED', '2026-12-01T00:00:00.123Z'];
  const itemSpan: ItemSpan = { traceId: T, spanId: S, parentSpanId: '1111111111111111', traceState: 'vendor=abc', sampled: true, startMs: 1764547200123.456, endMs: 1764547200125.5 };
  const item = exportItem(itemSpan, true, facts, '{"kind":"AccessLog","x":"a\\"b"}', 1764547201000);
  const enc = new OtlpJsonEncoder('octelium-cluster', 'octelium-ts/gateway');
  const traces = JSON.parse(encode(enc, 'spans', [item]));
  const rs = traces.resourceSpans[0];
  assert.deepEqual(decodeAttributes(rs.resource.attributes), { 'service.name': 'octelium-cluster' });
  assert.equal(rs.scopeSpans[0].scope.name, 'octelium-ts/gateway');
  const span = rs.scopeSpans[0].spans[0];
  assert.deepEqual(
    { traceId: span.traceId, spanId: span.spanId, parent: span.parentSpanId, state: span.traceState, name: span.name, kind: span.kind, start: span.startTimeUnixNano, end: span.endTimeUnixNano, status: span.status, flags: span.flags },
    { traceId: T, spanId: S, parent: '1111111111111111', state: 'vendor=abc', name: 'tools/call add', kind: 2, start: '1764547200123456000', end: '1764547200125500000', status: { code: 2, message: 'UPSTREAM_FAILED' }, flags: 0x301 },
  );
  assert.deepEqual(decodeAttributes(span.attributes), {
    status: 'DENIED', 'http.response.status_code': 502, user: 'u', service: 's', namespace: 'default', 'mcp.method': 'tools/call', 'mcp.tool': 'add',
    'http.request.method': 'POST', 'url.path': '/mcp', 'octelium.reason': 'POLICY', 'octelium.request_id': 'req-1', 'octelium.session': 'sess',
  });
  assert.equal(span.attributes[1].value.intValue, 502);
  const plainFacts: LogFacts = ['ALLOWED', 200, '', 'svc', '', '', '', 'GET', '/x', 'POLICY', 'req-2', '', '', '2026-12-01T00:00:00.123Z'];
  const rootItem = exportItem({ ...itemSpan, parentSpanId: undefined, traceState: undefined }, true, plainFacts, '{}', 0);
  const root = JSON.parse(encode(enc, 'spans', [rootItem])).resourceSpans[0].scopeSpans[0].spans[0];
  assert.equal(root.flags, 0x101, 'a root span: is-remote known, not remote');
  assert.deepEqual(root.status, { code: 0 });
  assert.equal(root.name, 'GET svc');
  assert.equal('parentSpanId' in root, false);

  const rec = JSON.parse(encode(enc, 'logs', [item])).resourceLogs[0].scopeLogs[0].logRecords[0];
  assert.equal(rec.body.stringValue, item.body);
  assert.equal(rec.timeUnixNano, String(Date.parse(facts[13])) + '000000');
  assert.equal(rec.observedTimeUnixNano, '1764547201000000000');
  assert.deepEqual([rec.severityNumber, rec.severityText, rec.eventName, rec.flags, rec.traceId, rec.spanId], [13, 'WARN', 'octelium.accesslog', 1, T, S]);
  assert.deepEqual(decodeAttributes(rec.attributes), { status: 'DENIED', 'http.response.status_code': 502, user: 'u', service: 's', namespace: 'default', 'mcp.method': 'tools/call', 'mcp.tool': 'add' });
  const plain = JSON.parse(encode(enc, 'logs', [exportItem(undefined, true, plainFacts, '{}', 0)])).resourceLogs[0].scopeLogs[0].logRecords[0];
  assert.deepEqual([plain.severityText, plain.traceId, plain.flags], ['INFO', undefined, undefined]);
});

test('OTLP/JSON: the text is exactly JSON.stringify of the SDK-shaped records, for odd values, many shapes and growing buffers', () => {
  const odd = ['', 'a"b\\c', 'line\nbreak\u0000', 'ünïcødé ☃ 😀', 'lone \ud800 surrogate', '</script>', 'x'.repeat(5000)];
  const items: ExportItem[] = [];
  for (let i = 0; i < 700; i++) {
    const o = (k: number) => odd[(i + k) % odd.length];
    const facts: LogFacts = [
      i % 3 ? 'ALLOWED' : 'DENIED', [200, 404, 500, 503, 201.5][i % 5], o(1), o(2), o(3), i % 4 ? 'tools/call' : '', o(4), 'POST', `/p/${i % 300}/${o(5)}`,
      'POLICY', `req-${i}-${o(6)}`, i % 2 ? o(0) : '', i % 7 ? '' : 'UPSTREAM_FAILED', new Date(1764547200000 + i * 1.5).toISOString(),
    ];
    const span: ItemSpan | undefined = i % 6 === 5 ? undefined : {
      traceId: newTraceId(), spanId: newSpanId(), sampled: i % 10 !== 3, startMs: 1764547200123.456 + i, endMs: 1764547200125.0004 + i,
      ...(i % 3 === 0 ? { parentSpanId: newSpanId() } : {}), ...(i % 5 === 0 ? { traceState: `v=${o(1).slice(0, 20)}` } : {}),
    };
    items.push(exportItem(span, true, facts, JSON.stringify({ kind: 'AccessLog', n: i, s: o(2), t: o(3) }), 1764547201000.25 + i));
  }
  const enc = new OtlpJsonEncoder('octelium-cluster', 'octelium-ts/gateway');
  const out = new ByteBuffer(16); // grows many times
  for (const batch of [items, items.slice(0, 1), items.slice(300), items]) { // shape cache: cold, warm, cleared past its bound
    const withSpans = batch.filter((it) => it.span?.sampled);
    assert.equal(encode(enc, 'spans', withSpans, out), reference.envelope('spans', withSpans.map((it) => reference.span(it.span!, itemFacts(it)))));
    assert.equal(encode(enc, 'logs', batch, out), reference.envelope('logs', batch.map((it) => reference.log(it))));
  }
  assert.equal(encode(enc, 'logs', [], out), reference.envelope('logs', []));
  assert.deepEqual([unixNano(1764547200999.9996), unixNano(NaN), unixNano(-1)], ['1764547201000000000', '0', '0'], 'rounded to the µs; a time that is not one is 0');
});

test('OTLP/JSON: records whose facts differ only in where a string is split get their own attributes (no shared cache entry)', () => {
  const base: LogFacts = ['ALLOWED', 200, 'ab', 'c', '', '', '', 'GET', '/x', 'POLICY', 'r', '', '', '2026-12-01T00:00:00.000Z'];
  const moved: LogFacts = ['ALLOWED', 200, 'a', 'bc', '', '', '', 'GET', '/x', 'POLICY', 'r', '', '', '2026-12-01T00:00:00.000Z'];
  const enc = new OtlpJsonEncoder('octelium-cluster', 'octelium-ts/gateway');
  const recs = JSON.parse(encode(enc, 'logs', [base, moved].map((facts) => exportItem(undefined, true, facts, '{}', 0)))).resourceLogs[0].scopeLogs[0].logRecords;
  assert.deepEqual(recs.map((r: { attributes: [] }) => decodeAttributes(r.attributes)).map((a: Record<string, unknown>) => [a.user, a.service]), [['ab', 'c'], ['a', 'bc']]);
});

test('export items cross to the worker intact (the AccessLog text is not re-escaped)', () => {
  const log = { kind: 'AccessLog', metadata: { id: 'r', createdAt: '2026-12-01T00:00:00.000Z' }, entry: { common: { status: 'ALLOWED', reason: { type: 'POLICY' }, serviceRef: { name: 's' } }, info: { http: { request: { method: 'POST', path: '/mcp', bodyMap: { jsonrpc: '2.0', method: 'tools/list' } }, response: { code: 200 } } } } } as unknown as AccessLog;
  const body = JSON.stringify(log);
  const span = { traceId: T, spanId: S, sampled: false, startMs: 1.5, endMs: 2.5 };
  const facts: LogFacts = ['ALLOWED', 200, '', 's', '', 'tools/list', '', 'POST', '/mcp', 'POLICY', 'r', '', '', '2026-12-01T00:00:00.000Z'];
  const [a, b] = decodeItems([encodeItem(span, true, log, body), 'not json\n[]\n{}', encodeItem(undefined, false, log, body)].join('\n'));
  assert.deepEqual(a, { span, log: true, labels: JSON.stringify(['ALLOWED', 200, '', 's', '', 'tools/list', '', 'POST', '/mcp', 'POLICY', '']), requestId: 'r', session: '', createdAt: '2026-12-01T00:00:00.000Z', body });
  assert.deepEqual(itemFacts(a), facts);
  assert.deepEqual([b.span, b.log, b.body], [undefined, false, body], 'an unreadable item is left out, the next one still read');
});

test('OTLP/HTTP sender: retries 503 (honouring Retry-After), gives up at once on 400, sends the headers', async () => {
  const statuses = [503, 200, 400];
  const seen: Array<{ auth?: string; type?: string; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, type: req.headers['content-type'], body });
      res.writeHead(statuses.shift() ?? 500, { 'retry-after': '0' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const sender = new OtlpHttpSender(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/logs`, { authorization: 'Bearer k' }, 5000);
    assert.equal(await sender.send('{"a":1}'), true);
    assert.equal(seen.length, 2, 'one retry after the 503');
    assert.deepEqual(seen[1], { auth: 'Bearer k', type: 'application/json', body: '{"a":1}' });
    assert.equal(await sender.send('{}'), false);
    assert.equal(seen.length, 3, '400 is not retried');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS and _COMPRESSION are read as the SDK read them', () => {
  const env = { OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%20b, x = 1 ,bad', OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'x=2', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip' };
  assert.deepEqual(envHeaders('LOGS', env), { 'api-key': 'a b', x: '2' });
  assert.deepEqual(envHeaders('TRACES', env), { 'api-key': 'a b', x: '1' });
  assert.deepEqual([envGzip('TRACES', env), envGzip('LOGS', env)], [true, false]);
});
