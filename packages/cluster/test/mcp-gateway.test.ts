import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { AccessLog } from '@octelium-ts/shared';
import { oauth2Token, service, startDemoMcpServer, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { startConformanceServer, type ConformanceServer } from './fixtures/mcp/conformance-server.js';

type Demo = Awaited<ReturnType<typeof startDemoMcpServer>>;
let tc: TestCluster;
let jsonMcp: Demo, sseMcp: Demo;
let fake: TestUpstream;
let everything: ConformanceServer;
const upstreamCalls: string[] = [];
const tokens: Record<string, string> = {};

const TOOLS = [{ name: 'add', inputSchema: { type: 'object' } }, { name: 'subtract', inputSchema: { type: 'object' } }, { name: 'multiply', inputSchema: { type: 'object' } }];
const MODERN = '2026-07-28';

before(async () => {
  tc = await startTestCluster();
  const record = (r: { body: string }) => {
    try {
      const b = JSON.parse(r.body) as { method?: string; params?: { name?: string } };
      if (b.method === 'tools/call') upstreamCalls.push(String(b.params?.name));
    } catch { /* GET/DELETE */ }
  };
  jsonMcp = await startDemoMcpServer({ jsonResponse: true, onRequest: record });
  sseMcp = await startDemoMcpServer({ jsonResponse: false, onRequest: record });
  everything = await startConformanceServer();
  // A hand-made upstream for what the SDK server cannot produce: 2026 list results, a batch reply, an idle SSE stream.
  fake = await startUpstream(async (req, res, body) => {
    const msg = body ? JSON.parse(body) : {};
    const result = { tools: TOOLS, ttlMs: 60000, cacheScope: 'public', resultType: 'complete' };
    if (req.url!.startsWith('/modern-json')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    } else if (req.url!.startsWith('/modern-sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: message\nid: ev-1\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`);
      res.end(`event: message\nid: ev-2\nretry: 1000\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result })}\n\n`);
    } else if (req.url!.startsWith('/slow-sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } })}\n\n`);
      await new Promise((r) => setTimeout(r, 400));
      res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { tools: TOOLS } })}\n\n`);
    } else if (req.url!.startsWith('/batch')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ jsonrpc: '2.0', id: 1, result: { tools: TOOLS } }, { jsonrpc: '2.0', id: 2, result: {} }]));
    } else if (req.url!.startsWith('/idle')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('id: 6\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"first"}}\n\n');
      await new Promise((r) => setTimeout(r, 450));
      res.end('id: 7\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"late"}}\n\n');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result: { ok: true } }));
    }
  });
    // bodyMap is an empty map on GET/DELETE: test the key, not the map.
  const isCall = (name: string) => `has(ctx.request.http.bodyMap.method) && ctx.request.http.bodyMap.method == "tools/call" && ctx.request.http.bodyMap.params.name == "${name}"`;
  await tc.api.apply({
    resources: [
      user('alice'),
      user('bob', { authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'no-subtract', effect: 'DENY', condition: { match: isCall('subtract') } }, { name: 'rest', effect: 'ALLOW', condition: { match: 'true' } }] } }] } }),
      // Small numbers only: depends on arguments, so the tools stay listed and the call decides.
      user('carol', { authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'small', effect: 'ALLOW', condition: { match: '!has(ctx.request.http.bodyMap.method) || ctx.request.http.bodyMap.method != "tools/call" || ctx.request.http.bodyMap.params.arguments.a < 100' } }] } }] } }),
      user('dave', { authorization: { inlinePolicies: [{ spec: { rules: [
        { name: 'no-simple-prompt', effect: 'DENY', condition: { match: 'has(ctx.request.http.bodyMap.method) && ctx.request.http.bodyMap.method == "prompts/get" && ctx.request.http.bodyMap.params.name == "test_simple_prompt"' } },
        { name: 'no-binary', effect: 'DENY', condition: { match: 'has(ctx.request.http.bodyMap.method) && ctx.request.http.bodyMap.method == "resources/read" && ctx.request.http.bodyMap.params.uri == "test://static-binary"' } },
        { name: 'rest', effect: 'ALLOW', condition: { match: 'true' } },
      ] } }] } }),
      user('eve'),
      service('alice-only', { mode: 'MCP', config: { upstream: { url: jsonMcp.url } }, authorization: { inlinePolicies: [{ spec: { rules: [{ effect: 'ALLOW', condition: { match: 'ctx.user.metadata.name == "alice"' } }] } }] } }),
      service('everything', { mode: 'MCP', config: { upstream: { url: everything.url.replace(/\/mcp$/, '') } } }),
      service('tools-json', { mode: 'MCP', config: { upstream: { url: jsonMcp.url } } }),
      service('tools-sse', { mode: 'MCP', config: { upstream: { url: sseMcp.url } } }),
      service('modern-json', { mode: 'MCP', config: { upstream: { url: `${fake.url}/modern-json` } } }),
      service('modern-sse', { mode: 'MCP', config: { upstream: { url: `${fake.url}/modern-sse` } } }),
      service('slow-sse', { mode: 'MCP', config: { upstream: { url: `${fake.url}/slow-sse` } } }),
      service('batchy', { mode: 'MCP', config: { upstream: { url: `${fake.url}/batch` } } }),
      service('idle', { mode: 'MCP', isAnonymous: true, mcp: { keepAlive: { milliseconds: 100 } }, config: { upstream: { url: `${fake.url}/idle` } } }),
      service('inspector', { mode: 'MCP', mcp: { allowedOrigins: ['http://localhost:6274'] }, config: { upstream: { url: jsonMcp.url } } }),
    ],
  });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'eve']) tokens[u] = await oauth2Token(tc.api, tc.cluster.url, u);
});
after(async () => {
  await Promise.all([jsonMcp.close(), sseMcp.close(), fake.close(), everything.close()]);
  await tc.close();
});

const endpoint = (svc: string) => `${tc.cluster.url}/svc/${svc}/mcp`;

async function connect(svc: string, who: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(endpoint(svc)), { requestInit: { headers: { authorization: `Bearer ${tokens[who]}` } } });
  const client = new Client({ name: 'mcp-gateway-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

async function toolNames(svc: string, who: string): Promise<string[]> {
  const { client } = await connect(svc, who);
  try {
    return (await client.listTools()).tools.map((t) => t.name).sort();
  } finally {
    await client.close();
  }
}

function post(svc: string, body: unknown, headers: Record<string, string> = {}) {
  return request(endpoint(svc), {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
  });
}

function modernList(id: number) {
  return { jsonrpc: '2.0', id, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN } } };
}

describe('tool filtering per caller', () => {
  for (const svc of ['tools-json', 'tools-sse']) {
    test(`${svc}: two users with different policies see different tools/list from the same upstream`, async () => {
      const [alice, bob, carol] = await Promise.all([toolNames(svc, 'alice'), toolNames(svc, 'bob'), toolNames(svc, 'carol')]);
      assert.deepEqual(alice, ['add', 'subtract']);
      assert.deepEqual(bob, ['add'], 'subtract is hidden from bob');
      assert.deepEqual(carol, ['add', 'subtract'], 'an argument-dependent rule keeps tools listed');
    });
  }

  test('tools-sse: the filtered list still arrives as an SSE stream', async () => {
    const { transport, client } = await connect('tools-sse', 'bob');
    const res = await post('tools-sse', { jsonrpc: '2.0', id: 99, method: 'tools/list', params: {} }, { authorization: `Bearer ${tokens.bob}`, 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-11-25' });
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    const text = await res.body.text();
    assert.match(text, /"name":"add"/);
    assert.doesNotMatch(text, /subtract/);
    await client.close();
  });

  test('calling a filtered tool gets the JSON-RPC error of a missing tool, and never reaches the upstream', async () => {
    for (const svc of ['tools-json', 'tools-sse']) {
      const { client } = await connect(svc, 'bob');
      const before = upstreamCalls.length;
      await assert.rejects(client.callTool({ name: 'subtract', arguments: { a: 5, b: 3 } }), (e: unknown) => e instanceof McpError && e.code === -32602 && /Unknown tool: subtract/.test(e.message));
      assert.equal(upstreamCalls.length, before, 'the denied call was not forwarded');
      const ok = (await client.callTool({ name: 'add', arguments: { a: 5, b: 3 } })) as { content: Array<{ text: string }> };
      assert.equal(ok.content[0].text, '8');
      await client.close();
    }
    tc.cluster.accessLogs.flush();
    const logs: AccessLog[] = tc.cluster.accessLogs.query({ service: 'tools-json' }, 1000);
    const denied = logs.find((l) => (l.entry.info.http.request.bodyMap as { params?: { name?: string } })?.params?.name === 'subtract');
    assert.equal(denied?.entry.common.status, 'DENIED');
    assert.equal(denied?.entry.info.http.response.code, 200);
  });

  test('a visible tool whose call the policy denies (by its arguments) gets 403, not "unknown tool"', async () => {
    const { client } = await connect('tools-json', 'carol');
    const ok = (await client.callTool({ name: 'subtract', arguments: { a: 50, b: 8 } })) as { content: Array<{ text: string }> };
    assert.equal(ok.content[0].text, '42');
    await assert.rejects(client.callTool({ name: 'subtract', arguments: { a: 500, b: 8 } }), /403|denied/i);
    await client.close();
  });

  test('SSE stays streamed while lists are rewritten: each event leaves as soon as it is complete', async () => {
    const res = await post('slow-sse', { jsonrpc: '2.0', id: 21, method: 'tools/list', params: {} }, { authorization: `Bearer ${tokens.bob}` });
    const arrivals: Array<{ at: number; text: string }> = [];
    for await (const c of res.body) arrivals.push({ at: Date.now(), text: String(c) });
    const first = arrivals.find((a) => a.text.includes('notifications/progress'))!;
    const last = arrivals.find((a) => a.text.includes('"result"'))!;
    assert.ok(last.at - first.at >= 300, `the progress event arrived ${last.at - first.at} ms before the result`);
    assert.doesNotMatch(last.text, /subtract/);
    assert.match(last.text, /"add"/);
  });

  test('a caller refused the whole Service gets 403 for a call, not "unknown tool"', async () => {
    const call = { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 } } };
    const res = await post('alice-only', call, { authorization: `Bearer ${tokens.eve}` });
    assert.equal(res.statusCode, 403);
    assert.equal(((await res.body.json()) as { error: { data: { code: string } } }).error.data.code, 'OCT_ERR_POLICY_DENIED');
  });

  test('2026 list results: filtered per caller and marked cacheScope "private" (JSON and SSE); SSE ids and retry kept', async () => {
    const headers = (who: string) => ({ authorization: `Bearer ${tokens[who]}`, 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/list' });
    const bobJson = (await (await post('modern-json', modernList(3), headers('bob'))).body.json()) as { result: { tools: Array<{ name: string }>; cacheScope: string; ttlMs: number } };
    assert.deepEqual(bobJson.result.tools.map((t) => t.name), ['add', 'multiply']);
    assert.equal(bobJson.result.cacheScope, 'private');
    assert.equal(bobJson.result.ttlMs, 60000);
    // alice has no policy at all: her list does not depend on who asks, so it stays shareable.
    const aliceJson = (await (await post('modern-json', modernList(4), headers('alice'))).body.json()) as { result: { tools: unknown[]; cacheScope: string } };
    assert.equal(aliceJson.result.tools.length, 3);
    assert.equal(aliceJson.result.cacheScope, 'public');
    const sse = await post('modern-sse', modernList(5), headers('bob'));
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    const text = await sse.body.text();
    assert.match(text, /event: message\nid: ev-1\ndata: .*notifications\/progress/, 'non-matching events pass unchanged');
    const last = text.split('\n\n').find((e) => e.includes('id: ev-2'))!;
    assert.match(last, /^event: message\nid: ev-2\nretry: 1000\ndata: /);
    const data = JSON.parse(last.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { result: { tools: Array<{ name: string }>; cacheScope: string } };
    assert.deepEqual(data.result.tools.map((t) => t.name), ['add', 'multiply']);
    assert.equal(data.result.cacheScope, 'private');
  });
  test('prompts and resources the policy names are filtered and answered as unknown the same way', async () => {
    const { client } = await connect('everything', 'dave');
    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    assert.ok(prompts.includes('test_prompt_with_image') && !prompts.includes('test_simple_prompt'), prompts.join());
    const resources = (await client.listResources()).resources.map((r) => r.uri);
    assert.ok(resources.includes('test://static-text') && !resources.includes('test://static-binary'), resources.join());
    await assert.rejects(client.getPrompt({ name: 'test_simple_prompt' }), (e: unknown) => e instanceof McpError && e.code === -32602);
    await assert.rejects(client.readResource({ uri: 'test://static-binary' }), (e: unknown) => e instanceof McpError && e.code === -32002);
    assert.equal(((await client.readResource({ uri: 'test://static-text' })).contents[0] as { text: string }).text, 'This is the content of the static text resource.');
    // Templates name no single resource: passed through.
    assert.equal((await client.listResourceTemplates()).resourceTemplates.length, 1);
    await client.close();
    const { client: alice } = await connect('everything', 'alice');
    assert.ok((await alice.listPrompts()).prompts.some((p) => p.name === 'test_simple_prompt'));
    await alice.close();
  });
});

describe('protocol checks', () => {
  test('2026-07-28 mirror headers must equal the body: mismatch → 400 with -32020', async () => {
    const call = { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'add', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': MODERN } } };
    const auth = { authorization: `Bearer ${tokens.alice}`, 'mcp-protocol-version': MODERN };
    for (const [h, why] of [
      [{ 'mcp-method': 'tools/list', 'mcp-name': 'add' }, /Mcp-Method/],
      [{ 'mcp-method': 'tools/call' }, /Mcp-Name/],
      [{ 'mcp-method': 'tools/call', 'mcp-name': 'subtract' }, /Mcp-Name/],
      [{ 'mcp-method': 'tools/call', 'mcp-name': 'add', 'mcp-protocol-version': '2025-11-25' }, /MCP-Protocol-Version/],
    ] as const) {
      const res = await post('modern-json', call, { ...auth, ...h });
      assert.equal(res.statusCode, 400);
      const body = (await res.body.json()) as { id: number; error: { code: number; message: string } };
      assert.equal(body.id, 11);
      assert.equal(body.error.code, -32020);
      assert.match(body.error.message, why);
    }
    // Matching headers (Mcp-Name base64-wrapped) pass through to the upstream.
    const ok = await post('modern-json', call, { ...auth, 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('add').toString('base64')}?=` });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  });

  test('a session id presented by another principal → 404; unknown ids → 404; the owner keeps working', async () => {
    const { client, transport } = await connect('tools-json', 'alice');
    const sid = transport.sessionId!;
    assert.ok(sid);
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
    const hijack = await post('tools-json', list, { authorization: `Bearer ${tokens.bob}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(hijack.statusCode, 404);
    assert.equal(((await hijack.body.json()) as { error: { data: { code: string } } }).error.data.code, 'OCT_ERR_MCP_SESSION_NOT_FOUND');
    const unknown = await post('tools-json', list, { authorization: `Bearer ${tokens.alice}`, 'mcp-session-id': 'not-a-session', 'mcp-protocol-version': '2025-11-25' });
    assert.equal(unknown.statusCode, 404);
    await unknown.body.dump();
    assert.equal((await client.listTools()).tools.length, 2, 'alice still uses her session');
    // Another token of the same user is the same principal.
    const second = await oauth2Token(tc.api, tc.cluster.url, 'alice');
    const same = await post('tools-json', list, { authorization: `Bearer ${second}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(same.statusCode, 200);
    await same.body.dump();
    await transport.terminateSession();
    const afterDelete = await post('tools-json', list, { authorization: `Bearer ${tokens.alice}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(afterDelete.statusCode, 404);
    await afterDelete.body.dump();
    await client.close();
  });

  test('bad Origin → 403 (before authentication); bad Host (DNS rebinding) → 403', async () => {
    const ping = { jsonrpc: '2.0', id: 5, method: 'ping' };
    const evil = await post('tools-json', ping, { origin: 'http://evil.example.com' });
    assert.equal(evil.statusCode, 403);
    const body = (await evil.body.json()) as { id: number; error: { data: { code: string } } };
    assert.equal(body.error.data.code, 'OCT_ERR_ORIGIN_NOT_ALLOWED');
    assert.equal(body.id, 5);
    const rebind = await post('tools-json', ping, { host: 'evil.example.com', origin: 'http://evil.example.com' });
    assert.equal(rebind.statusCode, 403);
    await rebind.body.dump();
    const rebindNoOrigin = await post('tools-json', ping, { host: 'evil.example.com' });
    assert.equal(rebindNoOrigin.statusCode, 403);
    await rebindNoOrigin.body.dump();
    // Its own origin is fine (then authentication applies).
    const same = await post('tools-json', ping, { origin: tc.cluster.url });
    assert.equal(same.statusCode, 401);
    await same.body.dump();
  });

  test('an allowed browser Origin gets CORS on preflight, challenges and responses', async () => {
    const origin = 'http://localhost:6274';
    const pre = await request(endpoint('inspector'), { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, mcp-session-id' } });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], origin);
    assert.match(String(pre.headers['access-control-allow-headers']), /Mcp-Session-Id/);
    const challenge = await post('inspector', { jsonrpc: '2.0', id: 1, method: 'ping' }, { origin });
    assert.equal(challenge.statusCode, 401);
    assert.equal(challenge.headers['access-control-allow-origin'], origin);
    assert.match(String(challenge.headers['access-control-expose-headers']), /WWW-Authenticate/);
    await challenge.body.dump();
    const init = await post('inspector', { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'inspector', version: '1' } } }, { origin, authorization: `Bearer ${tokens.alice}` });
    assert.equal(init.statusCode, 200);
    assert.equal(init.headers['access-control-allow-origin'], origin);
    assert.match(String(init.headers['access-control-expose-headers']), /Mcp-Session-Id/);
    await init.body.dump();
    // The same origin on a Service that does not list it is refused.
    const other = await post('tools-json', { jsonrpc: '2.0', id: 1, method: 'ping' }, { origin });
    assert.equal(other.statusCode, 403);
    await other.body.dump();
  });

  test('JSON-RPC batches: refused after 2025-03-26; in 2025-03-26 each element is authorized and lists are filtered', async () => {
    const auth = { authorization: `Bearer ${tokens.bob}` };
    const batch = [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 2, method: 'ping' }];
    const modern = await post('batchy', batch, { ...auth, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(modern.statusCode, 400);
    assert.equal(((await modern.body.json()) as { error: { code: number } }).error.code, -32600);
    const legacy = await post('batchy', batch, auth);
    assert.equal(legacy.statusCode, 200);
    const replies = (await legacy.body.json()) as Array<{ id: number; result: { tools?: Array<{ name: string }> } }>;
    assert.deepEqual(replies[0].result.tools!.map((t) => t.name), ['add', 'multiply']);
    assert.deepEqual(replies[1].result, {});
    const withDenied = await post('batchy', [...batch, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'subtract', arguments: {} } }], auth);
    assert.equal(withDenied.statusCode, 403);
    await withDenied.body.dump();
  });

  test('idle SSE streams get ":" keep-alive comments between events; events pass unchanged', async () => {
    const res = await post('idle', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow', arguments: {} } });
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    const text = await res.body.text();
    const events = text.split('\n\n').filter(Boolean);
    assert.ok(events[0].startsWith('id: 6\n'), text);
    const keepAlives = events.filter((e) => e === ': keep-alive');
    assert.ok(keepAlives.length >= 2, `expected keep-alives during the 450 ms pause:\n${text}`);
    assert.equal(events.at(-1), 'id: 7\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"late"}}');
  });
});
