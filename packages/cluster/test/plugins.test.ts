import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Resource } from '@octelium-ts/shared';
import { SEED_DIR, oauth2Token, service, startDemoMcpServer, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { setHeader, startExtProcServer, type ExtProcTestServer } from './helpers/extproc-server.js';

let tc: TestCluster;
let mcp: Awaited<ReturnType<typeof startDemoMcpServer>>;
const upstreamBodies: Array<{ body: string; headers: Record<string, unknown> }> = [];
let check: TestUpstream, echo: TestUpstream;
let xp: ExtProcTestServer;
let token: string;
let aliceUID: string;

async function mcpClient(svc: string): Promise<Client> {
  const client = new Client({ name: 'plugins-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/${svc}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}
const lastCall = () => JSON.parse(upstreamBodies.filter((b) => b.body.includes('tools/call')).at(-1)!.body) as { params: { name: string; arguments: Record<string, unknown> } };
const rawCall = (svc: string, id: number, name: string, args: Record<string, unknown>) =>
  request(`${tc.cluster.url}/svc/${svc}/mcp`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
  });

before(async () => {
  tc = await startTestCluster();
  mcp = await startDemoMcpServer({ jsonResponse: true, onRequest: (r) => upstreamBodies.push({ body: r.body, headers: r.headers }) });
  // Stands in for check-mcp: a JSON schema (a <= 100) and a verdict (13 is not allowed).
  check = await startUpstream((req, res, body) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/v1/get-json-schema') {
      return void res.end(JSON.stringify({ type: 'object', properties: { arguments: { type: 'object', properties: { a: { type: 'number', maximum: 100 } } } } }));
    }
    if (req.url === '/v1/check-subtract-params') return void res.end(JSON.stringify({ userIsAllowed: JSON.parse(body).arguments.a !== 13 }));
    res.statusCode = 404;
    res.end('{}');
  });
  echo = await startUpstream((req, res) => void res.end(JSON.stringify({ path: req.url })));
  xp = await startExtProcServer((req) => {
    if (req.request === 'request_headers') return { request_headers: { response: { header_mutation: { set_headers: [setHeader('x-extproc', 'seen')], remove_headers: ['x-remove-me'] } } } };
    if (req.request === 'request_body') {
      const msg = JSON.parse(Buffer.from(req.request_body?.body ?? []).toString('utf8'));
      if (msg.method === 'tools/call' && msg.params.arguments.a === 666) {
        return { immediate_response: { status: { code: 403 }, headers: { set_headers: [setHeader('content-type', 'application/json')] }, body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32001, message: 'blocked by extproc' } })) } };
      }
      if (msg.method === 'tools/call') msg.params.arguments.b = 100;
      return { request_body: { response: { body_mutation: { body: Buffer.from(JSON.stringify(msg)) } } } };
    }
    if (req.request === 'response_headers') return { response_headers: { response: { header_mutation: { set_headers: [setHeader('x-extproc-response', 'yes')] } } } };
    return undefined;
  });
  const seed = parse(readFileSync(join(SEED_DIR, '05-lua-plugin.yaml'), 'utf8')) as Resource & { spec: { config: { upstream: { url: string } } } };
  seed.metadata.name = 'lua-mcp';
  seed.spec.config.upstream.url = mcp.url;
  // The script is the seed's, unchanged. It indexes params.arguments, so it is gated to tools/call
  // (over a buffered JSON body); otherwise the MCP handshake would fail closed with a Lua error.
  const http = (seed.spec.config as unknown as { http: { plugins: Array<Record<string, unknown>>; enableRequestBuffering?: boolean; body?: unknown } }).http;
  http.enableRequestBuffering = true;
  http.body = { mode: 'JSON' };
  http.plugins[0].condition = { match: 'ctx.request.http.bodyMap.method == "tools/call"' };
  const luaPlugin = (name: string, inline: string) => service(name, { config: { upstream: { url: echo.url }, http: { plugins: [{ name: 'p', lua: { inline } }] } } });
  await tc.api.apply({
    resources: [
      user('alice', { email: 'alice@example.com' }),
      seed,
      service('check-mcp', { config: { upstream: { url: check.url } } }),
      service('xp-mcp', { config: { upstream: { url: mcp.url }, http: { plugins: [{ name: 'xp', extProc: { address: xp.address, processingMode: { requestBodyMode: 'BUFFERED' }, messageTimeout: { seconds: 2 } } }] } } }),
      luaPlugin('lua-loop', 'function onRequest(ctx)\n  while true do end\nend'),
      luaPlugin('lua-os', 'function onRequest(ctx)\n  os.execute("touch /tmp/pwned")\nend'),
      luaPlugin('lua-resp', 'function onRequest(ctx) end\nfunction onResponse(ctx)\n  local b = json.decode(octelium.resp.getResponseBody())\n  b.rewritten = true\n  octelium.resp.setResponseBody(json.encode(b))\nend'),
      // A Lua body rewrite, then a path rewrite, then a condition that must see both (facts rebuilt after each).
      service('rewrites', {
        config: {
          upstream: { url: echo.url },
          http: {
            enableRequestBuffering: true, body: { mode: 'JSON' },
            plugins: [
              { name: 'rename', phase: 1, lua: { inline: 'function onRequest(ctx)\n  local b = json.decode(octelium.req.getRequestBody())\n  b.method = "renamed"\n  octelium.req.setRequestBody(json.encode(b))\nend' } },
              { name: 'prefix', phase: 2, path: { addPrefix: '/p' } },
              { name: 'saw-both', phase: 3, condition: { match: 'ctx.request.http.bodyMap.method == "renamed" && ctx.request.http.path.startsWith("/p/")' }, direct: { statusCode: 200, body: { inline: '{"saw":"rewrites"}' }, headers: { 'content-type': 'application/json' } } },
            ],
          },
        },
      }),
      // Written b-then-a; `phase` runs a (1) before b (2): /x → /a/x → /b/a/x.
      service('phased', { config: { upstream: { url: echo.url }, http: { plugins: [{ name: 'b', phase: 2, path: { addPrefix: '/b' } }, { name: 'a', phase: 1, path: { addPrefix: '/a' } }] } } }),
      service('edits', {
        config: {
          upstream: { url: echo.url },
          http: {
            plugins: [
              { name: 'block-admin', condition: { match: 'ctx.request.http.path.startsWith("/admin")' }, direct: { statusCode: 403, body: { inline: '{"error":"forbidden"}' }, headers: { 'content-type': 'application/json' } } },
              { name: 'strip', path: { removePrefix: '/v1', addPrefix: '/api' } },
            ],
          },
        },
      }),
    ],
  });
  aliceUID = (await tc.api.get('User', 'alice')).metadata.uid!;
  token = await oauth2Token(tc.api, tc.cluster.url, 'alice');
});
after(async () => {
  await Promise.all([mcp.close(), check.close(), echo.close(), xp.stop()]);
  await tc.close();
});

describe('the seed Lua plugin, unchanged', () => {
  test('another-add → add, a < 0 clamped, b > 1000 clamped, user uid/email injected', async () => {
    const client = await mcpClient('lua-mcp');
    const res = (await client.callTool({ name: 'another-add', arguments: { a: -5, b: 5000 } })) as { content: Array<{ text: string }> };
    assert.equal(res.content[0].text, '1000'); // 0 + 1000 computed by the real upstream
    const seen = lastCall();
    assert.equal(seen.params.name, 'add');
    assert.equal(seen.params.arguments.a, 0);
    assert.equal(seen.params.arguments.b, 1000);
    assert.equal(seen.params.arguments.userUID, aliceUID);
    assert.equal(seen.params.arguments.userEmail, 'alice@example.com');
    await client.close();
  });

  test('sub: schema invalid → 400, check says no → 403, check unreachable → 500, allowed → upstream', async () => {
    const status = async (a: number) => {
      const r = await rawCall('lua-mcp', 5, 'sub', { a, b: 1 });
      const body = (await r.body.json()) as { id?: number };
      return { code: r.statusCode, id: body.id };
    };
    assert.deepEqual(await status(500), { code: 400, id: 5 });
    assert.deepEqual(await status(13), { code: 403, id: 5 });
    const before = upstreamBodies.length;
    const client = await mcpClient('lua-mcp');
    await client.callTool({ name: 'sub', arguments: { a: 7, b: 1 } }).catch(() => undefined); // upstream has no tool "sub"
    await client.close();
    assert.ok(upstreamBodies.slice(before).some((b) => b.body.includes('"sub"')), 'the allowed sub call reached the upstream');
    await tc.api.apply({ resources: [service('check-mcp', { config: { upstream: { url: 'http://127.0.0.1:1' } } })] });
    assert.deepEqual(await status(7), { code: 500, id: 5 });
    await tc.api.apply({ resources: [service('check-mcp', { config: { upstream: { url: check.url } } })] });
    assert.deepEqual((await status(13)).code, 403);
    tc.cluster.accessLogs.flush();
    const logs = tc.cluster.accessLogs.query({ service: 'lua-mcp' }, 100);
    const exit = logs.find((l) => l.entry.info.http.response.code === 403);
    assert.equal(exit?.entry.common.status, 'DENIED');
    assert.deepEqual(exit?.entry.common.plugins?.map((p) => [p.name, p.outcome]), [['check-inputs', 'exit']]);
  });

  test('an infinite loop is stopped and fails closed (500); os.execute is not available', async () => {
    const t0 = Date.now();
    const loop = await request(`${tc.cluster.url}/svc/lua-loop/x`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x' });
    assert.equal(loop.statusCode, 500);
    assert.equal(((await loop.body.json()) as { error: { code: string } }).error.code, 'OCT_ERR_PLUGIN_FAILED');
    assert.ok(Date.now() - t0 < 2000);
    const os = await request(`${tc.cluster.url}/svc/lua-os/x`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x' });
    assert.equal(os.statusCode, 500);
    await os.body.dump();
    assert.equal(echo.requests.filter((r) => r.body === 'x').length, 0, 'nothing reached the upstream');
  });

  test('onResponse rewrites a JSON response body', async () => {
    const r = await request(`${tc.cluster.url}/svc/lua-resp/hello`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await r.body.json(), { path: '/hello', rewritten: true });
  });
});

describe('ExtProc, direct and path plugins', () => {
  test('ExtProc: header mutation and body rewrite reach the upstream; the client sees the result', async () => {
    const client = await mcpClient('xp-mcp');
    const res = (await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } })) as { content: Array<{ text: string }> };
    assert.equal(res.content[0].text, '104'); // b rewritten to 100 by the ExtProc server
    const seen = upstreamBodies.at(-1)!;
    assert.equal(seen.headers['x-extproc'], 'seen');
    await client.close();
    const raw = await request(`${tc.cluster.url}/svc/xp-mcp/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-remove-me': '1', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) });
    assert.equal(raw.headers['x-extproc-response'], 'yes');
    await raw.body.dump();
    assert.equal(upstreamBodies.at(-1)!.headers['x-remove-me'], undefined);
  });

  test('ExtProc immediate 403 is what the MCP client gets', async () => {
    const r = await rawCall('xp-mcp', 42, 'add', { a: 666, b: 1 });
    assert.equal(r.statusCode, 403);
    assert.deepEqual(await r.body.json(), { jsonrpc: '2.0', id: 42, error: { code: -32001, message: 'blocked by extproc' } });
    const client = await mcpClient('xp-mcp');
    await assert.rejects(client.callTool({ name: 'add', arguments: { a: 666, b: 1 } }), /403|blocked by extproc/);
    await client.close();
  });

  test('a later plugin condition sees an earlier plugin\'s body and path rewrites; the AccessLog keeps both bodies', async () => {
    const res = await request(`${tc.cluster.url}/svc/rewrites/x`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'original' }),
    });
    assert.deepEqual(await res.body.json(), { saw: 'rewrites' });
    let log;
    for (let i = 0; i < 60 && !log; i++) {
      log = tc.cluster.accessLogs.query({ service: 'rewrites' }, 5)[0];
      if (!log) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(log, 'no AccessLog');
    const req = log.entry.info.http.request as { bodyMap?: { method?: string }; originalBodyMap?: { method?: string }; path: string };
    assert.equal(req.bodyMap?.method, 'renamed', 'the AccessLog shows what went on, not the body before the rewrite');
    assert.equal(req.originalBodyMap?.method, 'original', 'and what the policy saw');
    assert.equal(req.path, '/p/x');
  });

  test('direct response under a condition; path prefix rewrite', async () => {
    const blocked = await request(`${tc.cluster.url}/svc/edits/admin/x`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(blocked.statusCode, 403);
    assert.deepEqual(await blocked.body.json(), { error: 'forbidden' });
    const rewritten = await request(`${tc.cluster.url}/svc/edits/v1/tools?x=1`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await rewritten.body.json(), { path: '/api/tools?x=1' });
    const phased = await request(`${tc.cluster.url}/svc/phased/x`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await phased.body.json(), { path: '/b/a/x' });
  });
});
