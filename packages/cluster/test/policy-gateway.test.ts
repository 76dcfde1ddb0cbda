/**
 * Policy and plugin conditions through the real gateway (issue 18 §3, "fail closed, with Octelium's semantics"):
 * missing input is no match, other evaluation errors fail closed, dynamicConfig plugins run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { oauth2Token, service, startDemoMcpServer, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';

let tc: TestCluster;
let mcp: Awaited<ReturnType<typeof startDemoMcpServer>>;
let echo: TestUpstream, echo2: TestUpstream;
let bobToken: string, aliceToken: string;

const json = { enableRequestBuffering: true, body: { mode: 'JSON' } };
const lua = (name: string, value: string) => ({ name, lua: { inline: `function onRequest(ctx)\n  octelium.req.setRequestHeader("x-which", "${value}")\nend` } });

before(async () => {
  tc = await startTestCluster();
  mcp = await startDemoMcpServer({ jsonResponse: true });
  const answer = (tag: string) => (req: { url?: string; headers: Record<string, unknown> }, res: { setHeader(k: string, v: string): void; end(b: string): void }) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ upstream: tag, path: req.url, which: req.headers['x-which'] ?? null }));
  };
  echo = await startUpstream(answer('echo'));
  echo2 = await startUpstream(answer('echo2'));
  await tc.api.apply({
    resources: [
      user('alice'),
      // The case: this User may do anything but call `subtract`.
      user('bob', { authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'no-subtract', effect: 'DENY', condition: { match: 'ctx.request.http.bodyMap.params.name == "subtract"' } }] } }] } }),
      service('calc', {
        config: { upstream: { url: mcp.url }, http: json },
        authorization: { inlinePolicies: [{ spec: { rules: [{ name: 'everyone', effect: 'ALLOW', condition: { match: 'true' } }] } }] },
      }),
      service('guarded', {
        config: {
          upstream: { url: echo.url },
          http: {
            ...json,
            plugins: [{
              name: 'no-etc',
              condition: { match: 'ctx.request.http.bodyMap.params.arguments.path.startsWith("/etc")' },
              direct: { statusCode: 403, body: { inline: '{"error":"no /etc"}' }, headers: { 'content-type': 'application/json' } },
            }],
          },
        },
      }),
      service('dyn', {
        config: { upstream: { url: echo.url }, http: { plugins: [{ name: 'prefix', path: { addPrefix: '/default' } }, lua('tag', 'default')] } },
        dynamicConfig: {
          configs: [
            { name: 'v2', upstream: { url: echo.url }, http: { plugins: [{ name: 'prefix', path: { addPrefix: '/v2' } }, lua('tag', 'v2')] } },
            { name: 'up-only', upstream: { url: echo2.url } },
          ],
          rules: [
            { condition: { match: 'ctx.request.http.headers["x-version"] == "v2"' }, configName: 'v2' },
            { condition: { match: 'ctx.request.http.headers["x-version"] == "up"' }, configName: 'up-only' },
          ],
        },
      }),
    ],
  });
  bobToken = await oauth2Token(tc.api, tc.cluster.url, 'bob');
  aliceToken = await oauth2Token(tc.api, tc.cluster.url, 'alice');
});
after(async () => {
  await Promise.all([mcp.close(), echo.close(), echo2.close()]);
  await tc.close();
});

describe('missing input is no match (Octelium), through the gateway', () => {
  test('a User DENY on params.name: the MCP session opens, tools/list and add work, subtract is denied', async () => {
    const client = new Client({ name: 'policy-gateway-test', version: '1.0.0' });
    // initialize and notifications/initialized carry no params.name: the DENY rule must not match them.
    await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/calc/mcp`), { requestInit: { headers: { authorization: `Bearer ${bobToken}` } } }));
    const tools = await client.listTools();
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['add', 'subtract']);
    const sum = (await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } })) as { content: Array<{ text: string }> };
    assert.equal(sum.content[0].text, '11');
    await assert.rejects(client.callTool({ name: 'subtract', arguments: { a: 4, b: 7 } }), /403|denied/i);
    await client.close();
    tc.cluster.accessLogs.flush();
    const denied = tc.cluster.accessLogs.query({ service: 'calc' }, 100).filter((l) => l.entry.common.status === 'DENIED');
    assert.equal(denied.length, 1, 'only the subtract call was denied');
    assert.equal((denied[0].entry.common.reason as { details?: { rule?: string } }).details?.rule, 'no-subtract');
  });
});

describe('plugin conditions', () => {
  const call = (args: Record<string, unknown>) =>
    request(`${tc.cluster.url}/svc/guarded/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'read', arguments: args } }),
    });

  test('true → the plugin runs; false or missing input → skipped', async () => {
    const etc = await call({ path: '/etc/passwd' });
    assert.equal(etc.statusCode, 403);
    assert.deepEqual(await etc.body.json(), { error: 'no /etc' });
    const home = await call({ path: '/home/a' });
    assert.equal(home.statusCode, 200);
    assert.equal(((await home.body.json()) as { upstream: string }).upstream, 'echo');
    const none = await call({});
    assert.equal(none.statusCode, 200, 'no path argument: the condition is false, the request goes on');
    await none.body.dump();
  });

  test('a condition that cannot be evaluated (type error) fails closed: PLUGIN_FAILED, nothing upstream, AccessLog DENIED with the plugin error', async () => {
    const before = echo.requests.length;
    const r = await call({ path: 42 });
    assert.equal(r.statusCode, 500);
    const body = (await r.body.json()) as { jsonrpc?: string; id?: number; error: { code: unknown; message: string; data?: { code?: string } } };
    assert.equal(body.id, 9, 'a JSON-RPC error with the request id');
    assert.match(body.error.message, /plugin "no-etc": its condition could not be evaluated/);
    assert.equal(echo.requests.length, before, 'nothing reached the upstream');
    tc.cluster.accessLogs.flush();
    const log = tc.cluster.accessLogs.query({ service: 'guarded' }, 100).find((l) => l.entry.info.http.response.code === 500);
    assert.ok(log, 'the failed request is logged');
    assert.equal(log.entry.common.status, 'DENIED');
    assert.equal((log.entry.common as { error?: { code: string } }).error?.code, 'OCT_ERR_PLUGIN_FAILED');
    const run = log.entry.common.plugins?.[0];
    assert.equal(run?.name, 'no-etc');
    assert.equal(run?.outcome, 'error');
    assert.match(run?.error ?? '', /condition could not be evaluated \(no_matching_overload\)/);
  });
});

describe('dynamicConfig plugins', () => {
  const get = async (version?: string) => {
    const r = await request(`${tc.cluster.url}/svc/dyn/x`, { headers: { authorization: `Bearer ${aliceToken}`, ...(version ? { 'x-version': version } : {}) } });
    assert.equal(r.statusCode, 200);
    return r.body.json();
  };

  test('the picked config\'s plugins run instead of spec.config\'s; a config without http keeps spec.config\'s', async () => {
    assert.deepEqual(await get(), { upstream: 'echo', path: '/default/x', which: 'default' });
    assert.deepEqual(await get('v2'), { upstream: 'echo', path: '/v2/x', which: 'v2' });
    // Same plugin name in both configs, different scripts: each keeps its own compiled engine.
    assert.deepEqual(await get(), { upstream: 'echo', path: '/default/x', which: 'default' });
    assert.deepEqual(await get('up'), { upstream: 'echo2', path: '/default/x', which: 'default' });
  });
});
