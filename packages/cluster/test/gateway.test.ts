import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { AccessLog } from '@octelium-ts/shared';
import { oauth2Token, readSseArrivals, service, startDemoMcpServer, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

type Demo = Awaited<ReturnType<typeof startDemoMcpServer>>;
let tc: TestCluster;
let jsonMcp: Demo, sseMcp: Demo;
const seen: Array<{ headers: Record<string, unknown>; body: string }> = [];
let ticker: TestUpstream, echo: TestUpstream, slow: TestUpstream;
let tickerClosedAt = 0;
let aliceToken: string;

const buffered = { enableRequestBuffering: true, body: { mode: 'JSON', maxRequestSize: 100000 } };

async function mcpClient(svc: string, token: string): Promise<Client> {
  const client = new Client({ name: 'gateway-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/${svc}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

async function logsOf(svc: string): Promise<AccessLog[]> {
  tc.cluster.accessLogs.flush();
  return tc.cluster.accessLogs.query({ service: svc }, 1000);
}

function rpc(id: number, method: string, params: unknown = {}) {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params });
}

before(async () => {
  tc = await startTestCluster();
  jsonMcp = await startDemoMcpServer({ jsonResponse: true, onRequest: (r) => seen.push({ headers: r.headers, body: r.body }) });
  sseMcp = await startDemoMcpServer({ jsonResponse: false });
  // Emits an SSE event every 200 ms, each stamped with its emission time.
  ticker = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let n = 0;
    const t = setInterval(() => res.write(`id: ${n}\ndata: ${JSON.stringify({ n: n++, at: Date.now() })}\n\n`), 200);
    res.on('close', () => {
      clearInterval(t);
      tickerClosedAt = Date.now();
    });
  });
  echo = await startUpstream((req, res, body) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream-internal': 'secret-ish', 'x-keep': 'yes' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { echoed: body.length } }));
  });
  slow = await startUpstream(async (_req, res) => {
    await new Promise((r) => setTimeout(r, 1500));
    if (!res.destroyed) res.end('late');
  });
  await tc.api.apply({
    resources: [
      user('alice', { email: 'alice@example.com' }),
      user('bob', { authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'no-calls', effect: 'DENY', condition: { match: 'has(ctx.request.http.bodyMap.method) && ctx.request.http.bodyMap.method == "tools/call"' } }] } }] } }),
      { apiVersion: 'core/v1', kind: 'Group', metadata: { name: 'ops' }, spec: { authorization: { policies: ['allow-all'] } } },
      user('carol', { groups: ['ops'] }),
      user('dave'),
      { apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'up-key' }, spec: {}, data: { value: 'upstream-secret-v1' } },
      service('mcp-json', { config: { upstream: { url: jsonMcp.url }, http: buffered } }),
      service('mcp-sse', { config: { upstream: { url: sseMcp.url } } }),
      service('ticker', { config: { upstream: { url: ticker.url } } }),
      service('bearer', {
        config: {
          upstream: { url: echo.url },
          http: {
            auth: { bearer: { fromSecret: 'up-key' } },
            header: { addRequestHeaders: [{ key: 'X-Env', value: 'prod' }], removeRequestHeaders: ['X-Debug'], addResponseHeaders: [{ key: 'X-Gateway', value: 'octelium' }], removeResponseHeaders: ['X-Upstream-Internal'] },
          },
        },
      }),
      service('limited', { config: { upstream: { url: echo.url }, http: { enableRequestBuffering: true, body: { mode: 'JSON', maxRequestSize: 200 } } } }),
      service('down', { config: { upstream: { url: 'http://127.0.0.1:1' } } }),
      service('slow', { config: { upstream: { url: slow.url }, http: { timeout: { milliseconds: 300 } } } }),
      // The brief's L7 policy (seed 04), plus a rule that lets the MCP handshake through.
      service('guarded', {
        config: { upstream: { url: jsonMcp.url }, http: buffered },
        authorization: {
          inlinePolicies: [{
            spec: {
              rules: [
                { name: 'handshake', effect: 'ALLOW', condition: { match: 'ctx.request.http.bodyMap.method != "tools/call"' } },
                {
                  name: 'seed-04', effect: 'ALLOW', condition: {
                    all: {
                      of: [
                        { match: 'ctx.request.http.bodyMap.jsonrpc == "2.0"' },
                        { match: 'ctx.request.http.bodyMap.method == "tools/call"' },
                        { match: 'ctx.request.http.bodyMap.params.name in ["add", "subtract"]' },
                        { match: 'ctx.request.http.bodyMap.params.arguments.a < 1000' },
                      ],
                    },
                  },
                },
              ],
            },
          }],
        },
      }),
      // Only the ops Group's allow-all lets anyone in: the Service's own rule matches nobody.
      service('ops-only', { config: { upstream: { url: echo.url } }, authorization: { inlinePolicies: [{ spec: { rules: [{ effect: 'ALLOW', condition: { match: 'ctx.user.metadata.name == "nobody"' } }] } }] } }),
      service('routed', {
        config: { upstream: { url: jsonMcp.url }, http: buffered },
        dynamicConfig: {
          configs: [{ name: 'v2', upstream: { url: sseMcp.url } }],
          rules: [{ condition: { match: 'ctx.request.http.headers["x-version"] == "v2"' }, configName: 'v2' }],
        },
      }),
    ],
  });
  aliceToken = await oauth2Token(tc.api, tc.cluster.url, 'alice');
});
after(async () => {
  await Promise.all([jsonMcp.close(), sseMcp.close(), ticker.close(), echo.close(), slow.close()]);
  await tc.close();
});

describe('MCP through the gateway (client-credentials token)', () => {
  for (const svc of ['mcp-json', 'mcp-sse']) {
    test(`${svc}: initialize, tools/list, tools/call add 4+7 = 11`, async () => {
      const client = await mcpClient(svc, aliceToken);
      const tools = await client.listTools();
      assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['add', 'subtract']);
      const res = (await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } })) as { content: Array<{ text: string }> };
      assert.equal(res.content[0].text, '11');
      await client.close();
    });
  }

  test('AccessLog of the add call carries bodyMap.params.arguments and the identity', async () => {
    const logs = await logsOf('mcp-json');
    const call = logs.find((l) => (l.entry.info.http.request.bodyMap as { method?: string })?.method === 'tools/call');
    assert.ok(call, 'a tools/call AccessLog exists');
    assert.deepEqual((call.entry.info.http.request.bodyMap as { params: { arguments: unknown } }).params.arguments, { a: 4, b: 7 });
    assert.equal(call.entry.common.status, 'ALLOWED');
    assert.equal(call.entry.common.userRef?.name, 'alice');
    assert.equal(call.entry.info.http.response.code, 200);
    assert.equal(call.kind, 'AccessLog');
    assert.ok(call.entry.common.sessionRef?.name);
    assert.ok(!JSON.stringify(logs).includes(aliceToken), 'the token never appears in AccessLogs');
  });

  test('the client token is never forwarded upstream; Mcp-Session-Id passes both ways', () => {
    assert.ok(seen.length > 0);
    for (const r of seen) {
      assert.equal(r.headers.authorization, undefined);
      assert.equal(r.headers['x-octelium-auth'], undefined);
    }
    assert.ok(seen.some((r) => typeof r.headers['mcp-session-id'] === 'string'), 'the SDK echoed the session id the upstream issued');
    assert.ok(seen.some((r) => typeof r.headers['mcp-protocol-version'] === 'string'));
  });

  test('the host form <svc>.<domain> behaves like /svc/<svc>', async () => {
    const res = await request(`${tc.cluster.url}/mcp`, {
      method: 'POST',
      headers: { host: `bearer.${tc.cluster.domain}`, 'x-octelium-auth': aliceToken, 'content-type': 'application/json' },
      body: rpc(1, 'ping'),
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), { jsonrpc: '2.0', id: 1, result: { echoed: rpc(1, 'ping').length } });
  });
});

describe('authentication errors', () => {
  test('no token, wrong token → 401 with WWW-Authenticate and a JSON-RPC error carrying the id', async () => {
    for (const auth of [undefined, 'Bearer not-a-token', 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln']) {
      const res = await request(`${tc.cluster.url}/svc/mcp-json/mcp`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body: rpc(7, 'tools/list'),
      });
      assert.equal(res.statusCode, 401, String(auth));
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
      const body = (await res.body.json()) as { id: number; error: { data: { code: string } } };
      assert.equal(body.id, 7);
      assert.equal(body.error.data.code, 'OCT_ERR_UNAUTHENTICATED');
    }
    const logs = await logsOf('mcp-json');
    assert.ok(logs.some((l) => l.entry.common.status === 'DENIED' && l.entry.info.http.response.code === 401));
  });

  test('an expired OAuth2 token and an expired access token → 401', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const { token: at } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'alice-short-at' }, spec: { type: 'ACCESS_TOKEN', user: 'alice', expiresAt } });
    const { token: oc } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'alice-short-oauth' }, spec: { type: 'OAUTH2', user: 'alice', expiresAt } });
    const tr = await request(`${tc.cluster.url}/oauth2/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${oc.clientID}:${oc.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
    const jwt = ((await tr.body.json()) as { access_token: string; expires_in: number });
    assert.ok(jwt.expires_in <= 2);
    const call = (t: string) => request(`${tc.cluster.url}/svc/bearer/x`, { headers: { authorization: `Bearer ${t}` } }).then(async (r) => (await r.body.dump(), r.statusCode));
    assert.equal(await call(at.accessToken!), 200);
    assert.equal(await call(jwt.access_token), 200);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(await call(at.accessToken!), 401);
    assert.equal(await call(jwt.access_token), 401);
  });

  test('token endpoint rejects a wrong secret with invalid_client', async () => {
    const res = await request(`${tc.cluster.url}/oauth2/token`, { method: 'POST', body: 'grant_type=client_credentials&client_id=oc-nope&client_secret=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.statusCode, 401);
    assert.equal(((await res.body.json()) as { error: string }).error, 'invalid_client');
  });
});

describe('streaming', () => {
  test('SSE events reach the client one by one, before the next is emitted; abort closes upstream within 100 ms', async () => {
    const ac = new AbortController();
    const res = await request(`${tc.cluster.url}/svc/ticker/events`, { headers: { authorization: `Bearer ${aliceToken}` }, signal: ac.signal });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    const events = await readSseArrivals(res.body, 4);
    const lags = events.map((e) => e.at - (JSON.parse(e.data) as { at: number }).at);
    assert.equal(lags.length, 4);
    // Each event arrived well before the next one was emitted (200 ms later): nothing was buffered.
    for (const lag of lags) assert.ok(lag < 150, `event lag ${lag} ms`);
    const abortedAt = Date.now();
    ac.abort();
    const deadline = Date.now() + 1000;
    while (tickerClosedAt < abortedAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.ok(tickerClosedAt >= abortedAt, 'upstream request was closed');
    assert.ok(tickerClosedAt - abortedAt < 100, `upstream closed ${tickerClosedAt - abortedAt} ms after the client aborted`);
  });
});

describe('upstream credentials and headers', () => {
  test('the upstream sees the Secret bearer, never the client token; header edits apply; Secret changes apply live', async () => {
    const call = () => request(`${tc.cluster.url}/svc/bearer/api?q=1`, { headers: { authorization: `Bearer ${aliceToken}`, 'x-debug': '1', cookie: 'session=abc; octelium_auth=leaked; theme=dark' } });
    const res = await call();
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(res.headers['x-gateway'], 'octelium');
    assert.equal(res.headers['x-upstream-internal'], undefined);
    assert.equal(res.headers['x-keep'], 'yes');
    const seenReq = echo.requests.at(-1)!;
    assert.equal(seenReq.url, '/api?q=1');
    assert.equal(seenReq.headers.authorization, 'Bearer upstream-secret-v1');
    assert.equal(seenReq.headers['x-env'], 'prod');
    assert.equal(seenReq.headers['x-debug'], undefined);
    // The app's own cookies pass; the cluster's Session cookie never leaves the cluster.
    assert.equal(seenReq.headers.cookie, 'session=abc; theme=dark');
    await tc.api.update({ apiVersion: 'core/v1', kind: 'Secret', metadata: { name: 'up-key' }, spec: {}, data: { value: 'upstream-secret-v2' } });
    await (await call()).body.dump();
    assert.equal(echo.requests.at(-1)!.headers.authorization, 'Bearer upstream-secret-v2');
  });
});

describe('gateway errors: status + JSON-RPC body with the request id', () => {
  const post = (svc: string, body: string, headers: Record<string, string> = {}) =>
    request(`${tc.cluster.url}/svc/${svc}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', ...headers }, body });

  test('413 past maxRequestSize, 400 on invalid JSON', async () => {
    const big = await post('limited', rpc(11, 'tools/call', { name: 'add', arguments: { pad: 'x'.repeat(500) } }));
    assert.equal(big.statusCode, 413);
    assert.equal(((await big.body.json()) as { error: { data: { code: string } } }).error.data.code, 'OCT_ERR_BODY_TOO_LARGE');
    const bad = await post('limited', '{"jsonrpc": "2.0", "id": 12, ');
    assert.equal(bad.statusCode, 400);
    const body = (await bad.body.json()) as { id: unknown; error: { code: number } };
    assert.equal(body.id, null);
    assert.equal(body.error.code, -32700);
  });

  test('502 when the upstream is down, 504 on timeout, 404 for no such Service', async () => {
    const down = await post('down', rpc(21, 'tools/list'));
    assert.equal(down.statusCode, 502);
    assert.equal(((await down.body.json()) as { id: number }).id, 21);
    const t0 = Date.now();
    const slowRes = await post('slow', rpc(22, 'tools/list'));
    assert.equal(slowRes.statusCode, 504);
    assert.ok(Date.now() - t0 < 1400, 'timed out at the configured 300 ms, not the upstream 1.5 s');
    assert.equal(((await slowRes.body.json()) as { id: number }).id, 22);
    const none = await post('no-such-svc', rpc(23, 'tools/list'));
    assert.equal(none.statusCode, 404);
    assert.equal(((await none.body.json()) as { id: number }).id, 23);
    const logs = [...(await logsOf('down')), ...(await logsOf('slow'))];
    assert.deepEqual(logs.map((l) => l.entry.info.http.response.code).sort(), [502, 504]);
  });
});

test('a client that gives up before the upstream answers is logged as 499, not as an upstream failure', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(request(`${tc.cluster.url}/svc/slow/mcp`, { method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' }, body: rpc(31, 'tools/list'), signal: ac.signal }));
  await new Promise((r) => setTimeout(r, 100));
  const last = (await logsOf('slow')).at(-1)!;
  assert.equal(last.entry.info.http.response.code, 499);
  assert.equal(last.entry.common.status, 'ALLOWED');
});

describe('policies through the gateway', () => {
  test('seed policy: add a=4 allowed, a=5000 denied with 403 + JSON-RPC error + DENIED AccessLog', async () => {
    const client = await mcpClient('guarded', aliceToken);
    const ok = (await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } })) as { content: Array<{ text: string }> };
    assert.equal(ok.content[0].text, '11');
    const okFloat = (await client.callTool({ name: 'add', arguments: { a: 4.5, b: 1 } })) as { content: Array<{ text: string }> };
    assert.equal(okFloat.content[0].text, '5.5');
    await assert.rejects(client.callTool({ name: 'add', arguments: { a: 5000, b: 7 } }), /403|denied/i);
    await client.close();
    const raw = await request(`${tc.cluster.url}/svc/guarded/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: rpc(99, 'tools/call', { name: 'add', arguments: { a: 5000, b: 1 } }),
    });
    assert.equal(raw.statusCode, 403);
    const body = (await raw.body.json()) as { jsonrpc: string; id: number; error: { data: { code: string } } };
    assert.equal(body.id, 99);
    assert.equal(body.error.data.code, 'OCT_ERR_POLICY_DENIED');
    const denied = (await logsOf('guarded')).filter((l) => l.entry.common.status === 'DENIED');
    assert.ok(denied.length >= 2);
    assert.equal(denied.at(-1)!.entry.common.reason.type, 'NO_POLICY_MATCH');
    const allowed = (await logsOf('guarded')).find((l) => (l.entry.info.http.request.bodyMap as { params?: { arguments?: { a?: number } } })?.params?.arguments?.a === 4);
    assert.equal(allowed?.entry.common.reason.type, 'POLICY_MATCH');
    assert.equal((allowed?.entry.common.reason.details as { rule?: string })?.rule, 'seed-04');
  });

  test('a User-attached DENY overrides the Service ALLOW', async () => {
    const bobToken = await oauth2Token(tc.api, tc.cluster.url, 'bob');
    const client = await mcpClient('guarded', bobToken);
    await assert.rejects(client.callTool({ name: 'add', arguments: { a: 4, b: 7 } }), /403|denied/i);
    await client.close();
    const last = (await logsOf('guarded')).at(-1)!;
    assert.equal(last.entry.common.userRef?.name, 'bob');
    assert.equal(last.entry.common.status, 'DENIED');
    assert.equal((last.entry.common.reason.details as { rule?: string }).rule, 'no-calls');
  });

  test('a Group-attached ALLOW lets its members in; others get NO_POLICY_MATCH', async () => {
    const call = async (u: string) => {
      const t = await oauth2Token(tc.api, tc.cluster.url, u);
      const r = await request(`${tc.cluster.url}/svc/ops-only/x`, { headers: { authorization: `Bearer ${t}` } });
      await r.body.dump();
      return r.statusCode;
    };
    assert.equal(await call('carol'), 200);
    assert.equal(await call('dave'), 403);
  });

  test('dynamic routing sends matching requests to the second upstream', async () => {
    const send = (headers: Record<string, string>) => request(`${tc.cluster.url}/svc/routed/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } }),
    });
    const v1 = await send({});
    assert.match(String(v1.headers['content-type']), /application\/json/); // the JSON-mode server
    await v1.body.dump();
    const v2 = await send({ 'x-version': 'v2' });
    assert.match(String(v2.headers['content-type']), /text\/event-stream/); // the SSE-mode server
    await v2.body.dump();
  });
});
