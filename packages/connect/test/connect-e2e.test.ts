/**
 * The product's headline flow with real processes: `octelium-cluster start`, `octelium connect` agents, an MCP
 * SDK server listening on 127.0.0.1 only, and the MCP SDK client going through the cluster.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ApiClient } from '@octelium-ts/shared';
import {
  SEED_DIR, adminClient, oauth2Token, runBin, spawnCluster, startBin, startDemoMcpServer, tempDir, user,
  type BinProcess, type ClusterProcess,
} from '@octelium-ts/cluster/testing';

let cluster: ClusterProcess;
let api: ApiClient;
let mcp: Awaited<ReturnType<typeof startDemoMcpServer>>;
let domain: string;
let url: string;
const agents: BinProcess[] = [];

async function authToken(userName: string, cred: string): Promise<string> {
  return (await api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: cred }, spec: { type: 'AUTH_TOKEN', user: userName } })).token.authenticationToken!;
}

function connect(args: string[], token: string, home = tempDir('octelium-home-')): BinProcess {
  const a = startBin('octelium', ['connect', '--domain', domain, '--auth-token', token, ...args], { HOME: home });
  agents.push(a);
  return a;
}

async function addThroughCluster(endpoint: string, token?: string): Promise<string> {
  const client = new Client({ name: 'connect-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : {}));
  const res = (await client.callTool({ name: 'add', arguments: { a: 4, b: 7 } })) as { content: Array<{ text: string }> };
  await client.close();
  return res.content[0].text;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  const dataDir = tempDir();
  cluster = await spawnCluster(dataDir);
  domain = cluster.info.domain;
  url = cluster.info.url;
  api = await adminClient(domain, dataDir);
  mcp = await startDemoMcpServer({ host: '127.0.0.1' }); // loopback only: "behind NAT"
  // The seed file as written, pointed at where the demo server listens on this machine.
  const seed = readFileSync(join(SEED_DIR, '01-upstream-user.yaml'), 'utf8').replace('http://localhost:8080', `http://localhost:${mcp.port}`);
  const file = join(tempDir(), 'seed-01.yaml');
  writeFileSync(file, seed);
  await api.apply({ resources: [user('mcp-01'), user('client')] });
  const applied = await runBin('octeliumctl', ['apply', file], { env: { OCTELIUM_DOMAIN: domain, OCTELIUM_ACCESS_TOKEN: api.accessToken } });
  assert.equal(applied.stdout.trim(), 'service/my-mcp created', applied.stderr);
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop('SIGKILL')));
  await mcp.close();
  await cluster.stop();
});

test('seed flow: connect --serve my-mcp as mcp-01; a client with an OAuth2 token calls add 4+7 = 11', async () => {
  const agent = connect(['--serve', 'my-mcp'], await authToken('mcp-01', 'mcp-01-auth'));
  await agent.waitFor(/connected to .* as mcp-01; serving my-mcp/);
  const token = await oauth2Token(api, url, 'client');
  assert.equal(await addThroughCluster(`${url}/svc/my-mcp/mcp`, token), '11');
});

test('agent killed → 503 within 1 s; restarted → calls succeed again without touching the cluster', async () => {
  const token = await oauth2Token(api, url, 'client');
  agents.at(-1)!.proc.kill('SIGKILL');
  await agents.at(-1)!.stop();
  const t0 = Date.now();
  const res = await request(`${url}/svc/my-mcp/mcp`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }),
  });
  const elapsed = Date.now() - t0;
  assert.equal(res.statusCode, 503);
  const body = (await res.body.json()) as { id: number; error: { data: { code: string } } };
  assert.equal(body.id, 3);
  assert.equal(body.error.data.code, 'OCT_ERR_UPSTREAM_NOT_CONNECTED');
  assert.ok(elapsed < 1000, `503 after ${elapsed} ms`);
  const again = connect(['--serve', 'my-mcp'], await authToken('mcp-01', 'mcp-01-auth-2'));
  await again.waitFor(/connected to .* as mcp-01; serving my-mcp/);
  assert.equal(await addThroughCluster(`${url}/svc/my-mcp/mcp`, token), '11');
});

test("an agent of another user cannot serve mcp-01's Service", async () => {
  const intruder = connect(['--serve', 'my-mcp'], await authToken('client', 'client-auth'));
  const m = await intruder.waitFor(/refused my-mcp \(([^)]*)\)/);
  assert.match(m[1], /mcp-01|not assigned|another user/i);
});

test('-p my-mcp:PORT publishes the Service locally: the MCP client needs no token; status lists every running connect', async () => {
  const [port, port2] = [await freePort(), await freePort()];
  const home = tempDir('octelium-home-');
  const agent = connect(['-p', `my-mcp:${port}`], await authToken('client', 'client-auth-2'), home);
  await agent.waitFor(/publishing my-mcp on http:\/\/127\.0\.0\.1:\d+/);
  assert.equal(await addThroughCluster(`http://127.0.0.1:${port}/mcp`), '11');
  // A second agent for the same cluster from the same HOME: neither hides the other.
  const second = connect(['-p', `my-mcp:${port2}`], await authToken('client', 'client-auth-3'), home);
  await second.waitFor(/connected to .* as client/);
  const status = await runBin('octelium', ['status', '-o', 'json', '--domain', domain], { env: { HOME: home, OCTELIUM_ACCESS_TOKEN: api.accessToken } });
  assert.equal(status.code, 0, status.stderr);
  const agentsShown = JSON.parse(status.stdout).connect as Array<{ pid: number; state: string; publishing: Array<{ service: string; address: string }> }>;
  assert.deepEqual(agentsShown.map((a) => a.pid).sort(), [agent.proc.pid, second.proc.pid].sort());
  assert.ok(agentsShown.every((a) => a.state === 'connected'));
  assert.deepEqual(agentsShown.map((a) => a.publishing[0].address).sort(), [`127.0.0.1:${port}`, `127.0.0.1:${port2}`].sort());
  await second.stop();
  const after = JSON.parse((await runBin('octelium', ['status', '-o', 'json', '--domain', domain], { env: { HOME: home, OCTELIUM_ACCESS_TOKEN: api.accessToken } })).stdout);
  assert.deepEqual(after.connect.map((a: { pid: number }) => a.pid), [agent.proc.pid]);
});
