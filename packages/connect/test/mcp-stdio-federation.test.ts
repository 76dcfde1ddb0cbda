/**
 * stdio MCP servers through the tunnel (`octelium connect --serve-stdio`, a real agent process running the real
 * `@modelcontextprotocol/server-everything` over stdio) and a federated Service whose members are a direct
 * upstream and that tunnelled stdio server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { AccessLog } from '@octelium-ts/shared';
import {
  oauth2Token, service, startBin, startDemoMcpServer, startTestCluster, tempDir, user, type BinProcess, type TestCluster,
} from '@octelium-ts/cluster/testing';

const require = createRequire(import.meta.url);
const EVERYTHING = join(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist/index.js');
// A "server" that answers initialize with something that is not JSON-RPC.
const GARBAGE = `process.stdin.once('data', () => process.stdout.write('this is not json\\n')); setInterval(() => {}, 1000)`;

let tc: TestCluster;
let calc: Awaited<ReturnType<typeof startDemoMcpServer>>;
let agent: BinProcess;
const tokens: Record<string, string> = {};

const isCall = 'has(ctx.request.http.bodyMap.method) && ctx.request.http.bodyMap.method == "tools/call"';
/** A member policy: bob may call only `tool` there; everyone else anything. */
const onlyFor = (tool: string) => ({ inlinePolicies: [{ spec: { rules: [
  { name: 'bob-only', effect: 'DENY', condition: { match: `ctx.user.metadata.name == "bob" && ${isCall} && ctx.request.http.bodyMap.params.name != "${tool}"` } },
  { name: 'rest', effect: 'ALLOW', condition: { match: 'true' } },
] } }] });

async function connect(svc: string, who: string): Promise<Client> {
  const client = new Client({ name: 'stdio-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/${svc}/mcp`), { requestInit: { headers: { authorization: `Bearer ${tokens[who]}` } } }));
  return client;
}

async function logsOf(filter: (l: AccessLog) => boolean): Promise<AccessLog[]> {
  for (let i = 0; i < 60; i++) {
    const logs = (await tc.api.accessLogs({ limit: 500 })).items.filter(filter);
    if (logs.length) return logs;
    await new Promise((r) => setTimeout(r, 50));
  }
  return [];
}

before(async () => {
  tc = await startTestCluster();
  calc = await startDemoMcpServer({ jsonResponse: true });
  await tc.api.apply({
    resources: [
      user('mcp-01'), user('alice'), user('bob'),
      service('calc', { mode: 'MCP', config: { upstream: { url: calc.url } }, authorization: onlyFor('add') }),
      // upstream.url is required for a Service served through the tunnel; a stdio Service never dials it.
      service('laptop', { mode: 'MCP', config: { upstream: { url: 'http://localhost/stdio', user: 'mcp-01' } }, authorization: onlyFor('echo') }),
      service('garbage', { mode: 'MCP', config: { upstream: { url: 'http://localhost/stdio', user: 'mcp-01' } } }),
      service('tools', { mode: 'MCP', mcp: { federation: [{ service: 'calc', prefix: 'calc_' }, { service: 'laptop', prefix: 'lap_' }] } }),
    ],
  });
  for (const u of ['alice', 'bob']) tokens[u] = await oauth2Token(tc.api, tc.cluster.url, u);
  const { token } = await tc.api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'mcp-01-auth' }, spec: { type: 'AUTH_TOKEN', user: 'mcp-01' } });
  agent = startBin('octelium', [
    'connect', '--domain', tc.cluster.domain, '--auth-token', token.authenticationToken!,
    '--serve-stdio', `laptop=${process.execPath} '${EVERYTHING}' stdio`,
    '--serve-stdio', `garbage=${process.execPath} -e "${GARBAGE}"`,
    '--stdio-max-processes', '2',
  ], { HOME: tempDir('octelium-home-') });
  await agent.waitFor(/serving (garbage, laptop|laptop, garbage)/);
});

after(async () => {
  await agent?.stop('SIGTERM');
  await tc?.close();
  await calc?.close();
});

test('server-everything over stdio through the tunnel: tools, progress, and DELETE ends the process', async () => {
  const c = await connect('laptop', 'alice');
  assert.match(c.getServerVersion()?.name ?? '', /everything/i);
  const tools = (await c.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes('echo') && tools.includes('get-sum'), tools.join());
  const echo = await c.callTool({ name: 'echo', arguments: { message: 'hi' } });
  assert.match(JSON.stringify(echo.content), /Echo: hi/);
  const progress: number[] = [];
  await c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
  assert.deepEqual(progress, [1, 2, 3]);
  const prompts = (await c.listPrompts()).prompts;
  assert.ok(prompts.length > 0);
  const sid = (c.transport as StreamableHTTPClientTransport).sessionId!;
  await (c.transport as StreamableHTTPClientTransport).terminateSession();
  await agent.waitFor(new RegExp(`stdio server session ended.*${sid}.*the client ended the session`));
  await c.close();
});

test('max processes per Service: a third session is refused with 503 while two run', async () => {
  const a = await connect('laptop', 'alice');
  const b = await connect('laptop', 'alice');
  await assert.rejects(connect('laptop', 'alice'), /503|already runs 2 stdio server processes/);
  for (const c of [a, b]) {
    await (c.transport as StreamableHTTPClientTransport).terminateSession();
    await c.close();
  }
});

test('a stdio server that writes garbage on stdout: a JSON-RPC error, and it is killed', async () => {
  const r = await request(`${tc.cluster.url}/svc/garbage/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  });
  const text = await r.body.text();
  assert.match(text, /"code":-32603.*not a JSON-RPC message to stdout.*stopped/s, text);
  await agent.waitFor(/stdio server stopped: protocol violation/);
  await agent.waitFor(/stdio server session ended.*"service":"garbage"/);
});

test('federation: a direct member and the tunnelled stdio member; bob sees exactly what he may call, prefixed', async () => {
  const bob = await connect('tools', 'bob');
  const tools = (await bob.listTools()).tools.map((t) => t.name);
  let next = (await bob.listTools()).nextCursor;
  const all = [...tools];
  while (next) {
    const page = await bob.listTools({ cursor: next });
    all.push(...page.tools.map((t) => t.name));
    next = page.nextCursor;
  }
  assert.deepEqual(all.sort(), ['calc_add', 'lap_echo']);
  assert.equal(((await bob.callTool({ name: 'calc_add', arguments: { a: 2, b: 3 } })).content as Array<{ text: string }>)[0].text, '5');
  assert.match(JSON.stringify((await bob.callTool({ name: 'lap_echo', arguments: { message: 'via federation' } })).content), /Echo: via federation/);
  await assert.rejects(bob.callTool({ name: 'lap_get-sum', arguments: { a: 1, b: 2 } }), (e: McpError) => e.code === -32602);
  const denied = await logsOf((l) => l.entry.common.serviceRef?.name === 'laptop' && l.entry.common.status === 'DENIED' && l.entry.common.userRef?.name === 'bob');
  assert.equal(denied[0]?.entry.common.federation?.serviceRef.name, 'tools');
  assert.equal((denied[0]?.entry.info.http.request.bodyMap as { params: { name: string } }).params.name, 'get-sum');
  // alice is not limited: the full union, prefixed.
  const alice = await connect('tools', 'alice');
  const aliceTools: string[] = [];
  let cur: string | undefined;
  do {
    const page = await alice.listTools(cur ? { cursor: cur } : {});
    aliceTools.push(...page.tools.map((t) => t.name));
    cur = page.nextCursor;
  } while (cur);
  assert.ok(aliceTools.includes('calc_subtract') && aliceTools.includes('lap_get-sum'), aliceTools.join());
  assert.match(JSON.stringify((await alice.callTool({ name: 'lap_get-sum', arguments: { a: 1, b: 2 } })).content), /3/);
  for (const c of [bob, alice]) {
    await (c.transport as StreamableHTTPClientTransport).terminateSession();
    await c.close();
  }
});
