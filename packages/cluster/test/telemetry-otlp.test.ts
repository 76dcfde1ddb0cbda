import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { AccessLog } from '@octelium-ts/shared';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedLog } from '../src/telemetry/otlp-receiver.js';
import { oauth2Token, service, startDemoMcpServer, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { metricValue, parsePrometheus, startTelemetryCluster, waitUntil } from './telemetry-support.js';

type Demo = Awaited<ReturnType<typeof startDemoMcpServer>>;
let receiver: OtlpReceiver;
let tc: TestCluster;
let jsonMcp: Demo, sseMcp: Demo;
let big: TestUpstream, plain: TestUpstream;
let token: string;
const seen: Array<{ headers: Record<string, unknown>; body: string }> = [];

const buffered = { enableRequestBuffering: true, body: { mode: 'JSON', maxRequestSize: 100000 } };
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

async function mcpClient(svc: string): Promise<Client> {
  const client = new Client({ name: 'telemetry-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/${svc}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

function bodyOf(l: ReceivedLog): AccessLog {
  assert.equal(typeof l.body, 'string', 'the log record body is the AccessLog JSON text');
  return JSON.parse(l.body as string) as AccessLog;
}

function exportedCall(svc: string): Promise<ReceivedLog> {
  return waitUntil(`an exported tools/call log of ${svc}`, () => receiver.logs.find((l) => l.attributes.service === svc && l.attributes['mcp.method'] === 'tools/call'));
}

before(async () => {
  receiver = await startOtlpReceiver();
  tc = await startTelemetryCluster({ otlp: { endpoint: receiver.url, scheduledDelayMillis: 50 } });
  jsonMcp = await startDemoMcpServer({ jsonResponse: true, onRequest: (r) => seen.push({ headers: r.headers, body: r.body }) });
  sseMcp = await startDemoMcpServer({ jsonResponse: false });
  big = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { blob: 'x'.repeat(100_000) } }));
  });
  plain = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await tc.api.apply({
    resources: [
      user('alice'),
      service('mcp-json', { config: { upstream: { url: jsonMcp.url }, http: { ...buffered, visibility: { captureResponseBody: true } } } }),
      service('mcp-sse', { config: { upstream: { url: sseMcp.url }, http: { ...buffered, visibility: { captureResponseBody: true } } } }),
      service('mcp-nocapture', { config: { upstream: { url: jsonMcp.url }, http: buffered } }),
      service('big', { config: { upstream: { url: big.url }, http: { visibility: { captureResponseBody: true } } } }),
      service('plain', { isAnonymous: true, config: { upstream: { url: plain.url } } }),
    ],
  });
  token = await oauth2Token(tc.api, tc.cluster.url, 'alice');
});
after(async () => {
  await Promise.all([jsonMcp.close(), sseMcp.close(), big.close(), plain.close()]);
  await tc.close();
  await receiver.close();
});

describe('OTLP/HTTP export (JSON) to a real receiver', () => {
  test('tools/call: a log record with the AccessLog body and attributes, and a span with the trace id the upstream saw', async () => {
    const client = await mcpClient('mcp-json');
    const res = (await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } })) as { content: Array<{ text: string }> };
    assert.equal(res.content[0].text, '11');
    await client.close();

    const rec = await exportedCall('mcp-json');
    const log = bodyOf(rec);
    assert.deepEqual(log.entry.info.http.request.bodyMap, { jsonrpc: '2.0', id: (log.entry.info.http.request.bodyMap as { id: number }).id, method: 'tools/call', params: { name: 'add', arguments: { a: 4, b: 7 } } });
    assert.equal(log.kind, 'AccessLog');
    assert.deepEqual(
      { user: rec.attributes.user, service: rec.attributes.service, namespace: rec.attributes.namespace, status: rec.attributes.status, method: rec.attributes['mcp.method'], tool: rec.attributes['mcp.tool'] },
      { user: 'alice', service: 'mcp-json', namespace: 'default', status: 'ALLOWED', method: 'tools/call', tool: 'add' },
    );
    assert.equal(rec.resource['service.name'], 'octelium-cluster');

    // The upstream request of that call carried our traceparent; its trace id is the exported span's.
    const upstreamSaw = seen.find((s) => s.body.includes('"tools/call"'));
    assert.ok(upstreamSaw, 'the upstream saw the tools/call');
    const m = TRACEPARENT.exec(String(upstreamSaw.headers.traceparent));
    assert.ok(m, `a W3C traceparent upstream: ${String(upstreamSaw.headers.traceparent)}`);
    const span = await waitUntil('the span of the call', () => receiver.spans.find((s) => s.spanId === m[2]));
    assert.equal(span.traceId, m[1]);
    assert.equal(span.kind, 2, 'SERVER span');
    assert.equal(span.name, 'tools/call add');
    assert.equal(span.parentSpanId, undefined, 'no incoming traceparent: a root span');
    assert.equal(span.attributes['http.response.status_code'], 200);
    assert.equal(span.attributes.user, 'alice');
    // The log record is correlated with the span.
    assert.equal(rec.traceId, m[1]);
    assert.equal(rec.spanId, m[2]);
  });

  test('an incoming traceparent is honoured: same trace id upstream, our span is its child', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736', parent = '00f067aa0ba902b7';
    const before = seen.length;
    const r = await request(`${tc.cluster.url}/svc/mcp-json/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=abc' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    await r.body.text();
    assert.equal(r.statusCode, 200);
    const saw = seen.slice(before).find((s) => s.body.includes('"initialize"'));
    const m = TRACEPARENT.exec(String(saw?.headers.traceparent));
    assert.ok(m);
    assert.equal(m[1], traceId, 'same trace');
    assert.notEqual(m[2], parent, 'a new span id: the gateway span sits between');
    assert.equal(saw?.headers.tracestate, 'vendor=abc');
    const span = await waitUntil('the child span', () => receiver.spans.find((s) => s.spanId === m[2]));
    assert.equal(span.traceId, traceId);
    assert.equal(span.parentSpanId, parent);
  });

  test('a malformed incoming traceparent is replaced, not forwarded', async () => {
    const before = seen.length;
    const r = await request(`${tc.cluster.url}/svc/mcp-json/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', traceparent: '00-zzzz-1234-01' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    await r.body.text();
    const saw = seen.slice(before).find((s) => s.body.includes('"initialize"'));
    assert.match(String(saw?.headers.traceparent), TRACEPARENT);
  });

  test('response bodies: JSON response and a JSON-RPC result inside SSE are captured (exported and stored)', async () => {
    for (const svc of ['mcp-json', 'mcp-sse']) {
      const client = await mcpClient(svc);
      await client.callTool({ name: 'subtract', arguments: { a: 10, b: 3 } });
      await client.close();
      const logs = tc.cluster.accessLogs.query({ service: svc, method: 'tools/call' }, 100);
      const stored = logs.find((l) => (l.entry.info.http.request.bodyMap as { params: { name: string } }).params.name === 'subtract');
      assert.ok(stored, `${svc}: stored log`);
      assert.match(String(stored.entry.info.http.response.contentType), svc === 'mcp-sse' ? /^text\/event-stream/ : /^application\/json/);
      const body = stored.entry.info.http.response.bodyMap as { jsonrpc: string; result: { content: Array<{ text: string }> } };
      assert.equal(body?.jsonrpc, '2.0', `${svc}: response bodyMap captured`);
      assert.equal(body.result.content[0].text, '7');
      const exported = await waitUntil(`${svc}: exported subtract`, () => receiver.logs.find((l) => l.attributes.service === svc && l.attributes['mcp.tool'] === 'subtract'));
      assert.deepEqual(bodyOf(exported).entry.info.http.response.bodyMap, body);
    }
  });

  test('response capture is per Service, and bounded (a 100 KB JSON body is not recorded)', async () => {
    const client = await mcpClient('mcp-nocapture');
    await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
    await client.close();
    const off = tc.cluster.accessLogs.query({ service: 'mcp-nocapture', method: 'tools/call' }, 10);
    assert.equal(off.length, 1);
    assert.equal(off[0].entry.info.http.response.bodyMap, undefined);

    const r = await request(`${tc.cluster.url}/svc/big/`, { headers: { authorization: `Bearer ${token}` } });
    const text = await r.body.text();
    assert.equal(text.length > 100_000, true, 'the client got the whole body');
    const logs = tc.cluster.accessLogs.query({ service: 'big' }, 10);
    assert.equal(logs.at(-1)!.entry.info.http.response.bodyBytes, Buffer.byteLength(text));
    assert.equal(logs.at(-1)!.entry.info.http.response.bodyMap, undefined);
  });

  test('export counters on /metrics', async () => {
    await waitUntil('exports counted', async () => {
      const res = await request(`${tc.cluster.url}/metrics`, { headers: { authorization: `Bearer ${tc.adminToken}` } });
      const s = parsePrometheus(await res.body.text());
      return metricValue(s, 'octelium_otlp_exported_total', { signal: 'logs' }) > 0 && metricValue(s, 'octelium_otlp_exported_total', { signal: 'traces' }) > 0;
    });
  });
});

describe('export never blocks requests', () => {
  test('with a stalled receiver and a queue of 2, requests stay fast and drops are counted', async () => {
    const slow = await startOtlpReceiver();
    slow.delayMs = 3000;
    const c = await startTelemetryCluster({ otlp: { endpoint: slow.url, maxQueueSize: 2, maxExportBatchSize: 1, scheduledDelayMillis: 10 } });
    try {
      await c.api.apply({ resources: [service('plain', { isAnonymous: true, config: { upstream: { url: plain.url } } })] });
      const t0 = Date.now();
      for (let i = 0; i < 30; i++) {
        const r = await request(`${c.cluster.url}/svc/plain/x`);
        await r.body.text();
        assert.equal(r.statusCode, 200);
      }
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 2500, `30 requests took ${elapsed} ms while the receiver takes 3000 ms per export`);
      const res = await request(`${c.cluster.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } });
      const s = parsePrometheus(await res.body.text());
      assert.ok(metricValue(s, 'octelium_otlp_dropped_total', { signal: 'logs', reason: 'queue_full' }) >= 20, 'log records dropped');
      assert.ok(metricValue(s, 'octelium_otlp_dropped_total', { signal: 'traces', reason: 'queue_full' }) >= 20, 'spans dropped');
      assert.equal(c.cluster.accessLogs.query({ service: 'plain' }, 100).length, 30, 'AccessLogs themselves are all stored');
    } finally {
      await c.close();
      await slow.close();
    }
  });
});

describe('a failing receiver', () => {
  test('records of rejected exports are counted as export_failed; requests are unaffected', async () => {
    const failing = await startOtlpReceiver();
    failing.status = 400; // not retryable: the exporter gives up at once
    const c = await startTelemetryCluster({ otlp: { endpoint: failing.url, scheduledDelayMillis: 10 } });
    try {
      await c.api.apply({ resources: [service('plain', { isAnonymous: true, config: { upstream: { url: plain.url } } })] });
      for (let i = 0; i < 5; i++) {
        const r = await request(`${c.cluster.url}/svc/plain/x`);
        await r.body.text();
        assert.equal(r.statusCode, 200);
      }
      await waitUntil('export failures counted', async () => {
        const s = parsePrometheus(await (await request(`${c.cluster.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } })).body.text());
        return metricValue(s, 'octelium_otlp_dropped_total', { signal: 'logs', reason: 'export_failed' }) === 5 && metricValue(s, 'octelium_otlp_dropped_total', { signal: 'traces', reason: 'export_failed' }) === 5;
      });
      assert.equal(failing.logs.length, 0);
    } finally {
      await c.close();
      await failing.close();
    }
  });
});

describe('OTLP off when not configured', () => {
  test('no endpoint and no OTEL_EXPORTER_OTLP_ENDPOINT: nothing exported, no traceparent added', async () => {
    const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    const echo = await startUpstream((_req, res) => void res.end('ok'));
    const c = await startTelemetryCluster({});
    try {
      await c.api.apply({ resources: [service('echo', { isAnonymous: true, config: { upstream: { url: echo.url } } })] });
      const r = await request(`${c.cluster.url}/svc/echo/`);
      await r.body.text();
      assert.equal(r.statusCode, 200);
      assert.equal(echo.requests[0].headers.traceparent, undefined);
      const s = parsePrometheus(await (await request(`${c.cluster.url}/metrics`, { headers: { authorization: `Bearer ${c.adminToken}` } })).body.text());
      assert.equal(metricValue(s, 'octelium_otlp_exported_total'), 0);
    } finally {
      if (saved !== undefined) process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
      await c.close();
      await echo.close();
    }
  });

  test('OTEL_EXPORTER_OTLP_ENDPOINT alone turns export on', async () => {
    const r2 = await startOtlpReceiver();
    const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = r2.url;
    const c = await startTelemetryCluster({ otlp: { scheduledDelayMillis: 20 } });
    try {
      await c.api.apply({ resources: [service('plain', { isAnonymous: true, config: { upstream: { url: plain.url } } })] });
      await (await request(`${c.cluster.url}/svc/plain/env`)).body.text();
      const rec = await waitUntil('a log via the env endpoint', () => r2.logs.find((l) => l.attributes.service === 'plain'));
      assert.equal(bodyOf(rec).entry.info.http.request.path, '/env');
    } finally {
      if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
      await c.close();
      await r2.close();
    }
  });
});
