import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import type { AccessLog } from '@octelium-ts/shared';
import { oauth2Token, service, startDemoMcpServer, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { startConformanceServer, type ConformanceServer } from './fixtures/mcp/conformance-server.js';

type Demo = Awaited<ReturnType<typeof startDemoMcpServer>>;
let tc: TestCluster;
let calc: Demo;
let conf: ConformanceServer;
const tokens: Record<string, string> = {};
const warnings: string[] = [];
const originalWarn = console.warn;

const isCall = (name: string) => `has(ctx.request.http.bodyMap.method) && ctx.request.http.bodyMap.method == "tools/call" && ctx.request.http.bodyMap.params.name == "${name}"`;

async function connect(svc: string, who: string, opts: { sampling?: boolean } = {}): Promise<Client> {
  const client = new Client({ name: 'fed-test', version: '1.0.0' }, { capabilities: opts.sampling ? { sampling: {}, elicitation: {} } : {} });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/${svc}/mcp`), { requestInit: { headers: { authorization: `Bearer ${tokens[who]}` } } }));
  return client;
}

async function logsOf(filter: (l: AccessLog) => boolean): Promise<AccessLog[]> {
  for (let i = 0; i < 50; i++) {
    const logs = (await tc.api.accessLogs({ limit: 200 })).items.filter(filter);
    if (logs.length) return logs;
    await new Promise((r) => setTimeout(r, 50));
  }
  return [];
}

before(async () => {
  console.warn = (...a: unknown[]) => void warnings.push(a.map(String).join(' '));
  tc = await startTestCluster();
  calc = await startDemoMcpServer({ jsonResponse: true });
  conf = await startConformanceServer();
  await tc.api.apply({
    resources: [
      user('alice'),
      user('bob'),
      // calc: bob may not subtract (hidden from his list, and a call is refused by calc's policy).
      service('calc', { mode: 'MCP', config: { upstream: { url: calc.url } }, authorization: { inlinePolicies: [{ spec: { rules: [
        { name: 'bob-no-subtract', effect: 'DENY', condition: { match: `ctx.user.metadata.name == "bob" && ${isCall('subtract')}` } },
        { name: 'rest', effect: 'ALLOW', condition: { match: 'true' } },
      ] } }] } }),
      service('conf', { mode: 'MCP', config: { upstream: { url: conf.url.replace(/\/mcp$/, '') } } }),
      service('down', { mode: 'MCP', config: { upstream: { url: 'http://127.0.0.1:9' } } }),
      service('tools', { mode: 'MCP', mcp: { federation: [{ service: 'calc', prefix: 'calc_' }, { service: 'conf', prefix: 'c_' }], tools: { exclude: ['*_error_*', 'c_test_image*'] } } }),
      service('with-down', { mode: 'MCP', mcp: { federation: [{ service: 'down', prefix: 'd_' }, { service: 'calc', prefix: 'calc_' }] } }),
      service('single', { mode: 'MCP', mcp: { federation: [{ service: 'conf' }] } }),
    ],
  });
  for (const u of ['alice', 'bob']) tokens[u] = await oauth2Token(tc.api, tc.cluster.url, u);
});

after(async () => {
  console.warn = originalWarn;
  await tc?.close();
  await calc?.close();
  await conf?.close();
});

describe('federated MCP Service', () => {
  test('initialize: own session id, capabilities are the union of the members', async () => {
    const c = await connect('tools', 'alice');
    const caps = c.getServerCapabilities()!;
    assert.ok(caps.tools && caps.prompts && caps.resources && caps.logging && caps.completions, JSON.stringify(caps));
    assert.equal(c.getServerVersion()?.name, 'tools');
    assert.match((c.transport as StreamableHTTPClientTransport).sessionId ?? '', /^[0-9a-f-]{36}$/);
    await c.close();
  });

  test('tools/list: prefixed, include/exclude applied, paginated across members', async () => {
    const c = await connect('tools', 'alice');
    const names: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await c.listTools(cursor ? { cursor } : {});
      names.push(...r.tools.map((t) => t.name));
      cursor = r.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    assert.equal(pages, 2);
    assert.ok(names.includes('calc_add') && names.includes('calc_subtract') && names.includes('c_test_simple_text'), names.join());
    assert.ok(!names.includes('c_test_error_handling') && !names.includes('c_test_image_content'), 'excluded by globs');
    await assert.rejects(c.listTools({ cursor: 'bm90LW91cnM' }), (e: McpError) => e.code === -32602);
    await c.close();
  });

  test("each member's own policies filter the list per caller and decide the call", async () => {
    const bob = await connect('tools', 'bob');
    const tools = (await bob.listTools()).tools.map((t) => t.name);
    assert.deepEqual(tools.filter((n) => n.startsWith('calc_')).sort(), ['calc_add', 'calc_multiply'].filter((n) => tools.includes(n)).concat(tools.includes('calc_subtract') ? ['calc_subtract'] : []).sort());
    assert.ok(tools.includes('calc_add') && !tools.includes('calc_subtract'), tools.join());
    const r = await bob.callTool({ name: 'calc_add', arguments: { a: 2, b: 3 } });
    assert.equal((r.content as Array<{ text: string }>)[0].text, '5');
    await assert.rejects(bob.callTool({ name: 'calc_subtract', arguments: { a: 2, b: 3 } }), (e: McpError) => e.code === -32602 && /Unknown tool/.test(e.message));
    // Excluded by the federated Service's globs: unknown, never sent to the member.
    await assert.rejects(bob.callTool({ name: 'c_test_error_handling', arguments: {} }), (e: McpError) => e.code === -32602);
    const denied = await logsOf((l) => l.entry.common.serviceRef?.name === 'calc' && l.entry.common.status === 'DENIED' && l.entry.common.userRef?.name === 'bob');
    assert.equal(denied[0]?.entry.common.federation?.serviceRef.name, 'tools');
    const fed = await logsOf((l) => l.metadata.id === denied[0].entry.common.federation!.requestId);
    assert.equal(fed[0]?.entry.common.serviceRef?.name, 'tools');
    assert.equal((fed[0]?.entry.info.http.request.bodyMap as { params: { name: string } }).params.name, 'calc_subtract');
    const alice = await connect('tools', 'alice');
    assert.equal(((await alice.callTool({ name: 'calc_subtract', arguments: { a: 9, b: 3 } })).content as Array<{ text: string }>)[0].text, '6');
    await bob.close();
    await alice.close();
  });

  test('progress and logging stream back per event; sampling and elicitation are relayed', async () => {
    const c = await connect('tools', 'alice', { sampling: true });
    const progress: number[] = [];
    const r = await c.callTool({ name: 'c_test_tool_with_progress', arguments: {} }, undefined, { onprogress: (p) => progress.push(p.progress) });
    assert.ok(r.content);
    assert.deepEqual(progress, [0, 50, 100]);
    c.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', content: { type: 'text', text: 'sampled!' }, model: 'm' }));
    c.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { username: 'u', email: 'e@x' } }));
    const s = await c.callTool({ name: 'c_test_sampling', arguments: { prompt: 'hi' } });
    assert.match(JSON.stringify(s.content), /sampled!/);
    const e = await c.callTool({ name: 'c_test_elicitation', arguments: { message: 'who?' } });
    assert.match(JSON.stringify(e.content), /accept/);
    await c.close();
  });

  test('prompts and resources are merged and routed', async () => {
    const c = await connect('tools', 'alice');
    const prompts = (await c.listPrompts()).prompts.map((p) => p.name);
    assert.ok(prompts.includes('c_test_simple_prompt'), prompts.join());
    const got = await c.getPrompt({ name: 'c_test_simple_prompt' });
    assert.ok(got.messages.length);
    const resources = (await c.listResources()).resources;
    assert.ok(resources.some((r) => r.uri === 'test://static-text'));
    const read = await c.readResource({ uri: 'test://static-text' });
    assert.ok(read.contents.length);
    // Templates: a URI no list named is found through the template or by asking each member.
    const t = await c.readResource({ uri: 'test://template/7/data' });
    assert.match(JSON.stringify(t.contents), /7/);
    await c.close();
  });

  test('a member that is down is left out with a warning; the others keep working', async () => {
    const c = await connect('with-down', 'alice');
    const tools = (await c.listTools()).tools.map((t) => t.name);
    const all = [...tools];
    let cursor: string | undefined = undefined;
    const first = await c.listTools();
    cursor = first.nextCursor;
    while (cursor) {
      const r = await c.listTools({ cursor });
      all.push(...r.tools.map((t) => t.name));
      cursor = r.nextCursor;
    }
    assert.ok(all.includes('calc_add') && !all.some((n) => n.startsWith('d_')), all.join());
    assert.ok(warnings.some((w) => w.includes('federation: member left out') && w.includes('"member":"down"')), warnings.join('\n'));
    await assert.rejects(c.callTool({ name: 'd_anything', arguments: {} }), (e: McpError) => /unavailable/.test(e.message));
    await c.close();
  });

  test('session: unknown ids are 404, another user cannot use it, DELETE ends the member sessions', async () => {
    const c = await connect('tools', 'alice');
    const sid = (c.transport as StreamableHTTPClientTransport).sessionId!;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const foreign = await request(`${tc.cluster.url}/svc/tools/mcp`, { method: 'POST', body, headers: { ...headers, authorization: `Bearer ${tokens.bob}`, 'mcp-session-id': sid } });
    assert.equal(foreign.statusCode, 404);
    await foreign.body.dump();
    await (c.transport as StreamableHTTPClientTransport).terminateSession();
    const after = await request(`${tc.cluster.url}/svc/tools/mcp`, { method: 'POST', body, headers: { ...headers, authorization: `Bearer ${tokens.alice}`, 'mcp-session-id': sid } });
    assert.equal(after.statusCode, 404);
    await after.body.dump();
    await c.close();
  });

  test('hostile bodies get JSON-RPC errors, never a crash', async () => {
    const c = await connect('tools', 'alice');
    const sid = (c.transport as StreamableHTTPClientTransport).sessionId!;
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${tokens.alice}`, 'mcp-session-id': sid };
    for (const b of [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 42 } },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: 'x' },
      { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: { a: 1 } } },
      { jsonrpc: '2.0', id: 4, method: 'tools/list', params: { cursor: 12 } },
      { jsonrpc: '2.0', id: 5, method: 'completion/complete', params: { ref: 'nope' } },
      { jsonrpc: '2.0', id: 6, method: 7 },
      { jsonrpc: '2.0', id: { x: 1 }, result: {} },
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: { x: 1 } } },
      [1, 2],
      'str',
    ]) {
      const r = await request(`${tc.cluster.url}/svc/tools/mcp`, { method: 'POST', body: JSON.stringify(b), headers });
      const text = await r.body.text();
      assert.ok(r.statusCode < 500, `${JSON.stringify(b)} → ${r.statusCode} ${text}`);
    }
    assert.equal(tc.cluster.faults.counts().get('gateway') ?? 0, 0);
    await c.close();
  });
});
