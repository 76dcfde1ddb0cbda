import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { Resource } from '@octelium-ts/shared';
import { readSseArrivals } from '@octelium-ts/cluster/testing';
import { TunnelHub } from '../../cluster/src/tunnel/index.js';
import { startAgent, type AgentHandle, type AgentState } from '../src/agent/index.js';
import { waitAgentState } from './helpers/agent-state.js';

const TOKENS: Record<string, string> = { 'tok-alice': 'alice', 'tok-bob': 'bob' };

interface GatewayLog { path: string; auth?: string; authorization?: string; closedEarly?: boolean; closedAt?: number }

/**
 * The cluster side: a hub whose selfURL is a test "gateway" that, like the real one, authenticates X-Octelium-Auth
 * (only alice's Session is valid there) and serves /svc/pub/*.
 */
async function startCluster(port = 0) {
  const seen: GatewayLog[] = [];
  const gateway = createServer((req, res) => {
    const entry: GatewayLog = {
      path: req.url!, auth: req.headers['x-octelium-auth'] as string | undefined, authorization: req.headers.authorization,
    };
    seen.push(entry);
    if (entry.auth !== 'tok-alice') {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      return void res.end(JSON.stringify({ error: { code: 'OCT_ERR_UNAUTHENTICATED', message: 'bad token' } }));
    }
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/svc/pub/echo') {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-gateway': '1' });
        res.end(JSON.stringify({ method: req.method, path: req.url, body: Buffer.concat(chunks).toString(), headers: req.headers }));
      });
    } else if (url.pathname === '/svc/pub/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      let i = 0;
      const emits: number[] = [];
      (res as unknown as { emits: number[] }).emits = emits;
      sseEmits.push(emits);
      const send = () => {
        emits.push(Date.now());
        res.write(`data: ${i}\n\n`);
        if (++i < 4) setTimeout(send, 200);
        else res.end();
      };
      send();
    } else if (url.pathname === '/svc/pub/hang') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      res.on('close', () => (entry.closedAt = Date.now()));
    } else {
      res.writeHead(404).end();
    }
  });
  gateway.listen(0, '127.0.0.1');
  await once(gateway, 'listening');
  const gatewayURL = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;

  const services = new Map<string, Resource>();
  const hub = new TunnelHub({
    authenticate: (t) => (TOKENS[t] ? { user: { apiVersion: 'core/v1', kind: 'User', metadata: { name: TOKENS[t] }, spec: {} }, via: 'session' } : undefined),
    getService: (n) => services.get(n),
    selfURL: () => gatewayURL,
    log: () => {},
  });
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    hub,
    seen,
    async close() {
      await hub.close();
      server.closeAllConnections();
      gateway.closeAllConnections();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => gateway.close(r))]);
    },
  };
}
const sseEmits: number[][] = [];


async function publishingAgent(port: number, token = 'tok-alice', publishGraceMs = 2000) {
  const agent = await startAgent({
    domain: `127.0.0.1:${port}`,
    accessToken: token,
    serve: [],
    serveAll: false,
    publish: [{ service: 'pub', port: 0 }],
    stateFile: false,
    backoff: { initialMs: 100, maxMs: 300 },
    publishGraceMs,
    log: () => {},
  });
  const address = agent.state.publishing[0].address;
  return { agent, base: `http://${address}` };
}

test('a published port forwards through the tunnel to the gateway as the agent, with no local credential', async () => {
  const cluster = await startCluster();
  const { agent, base } = await publishingAgent(cluster.port);
  try {
    assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(new URL(base).port, '0', 'port 0 is reported as the real port');
    await waitAgentState(agent, (s) => s.state === 'connected');
    const res = await request(`${base}/echo?q=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer some-local-client-token' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call' }),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-gateway'], '1');
    const echo = (await res.body.json()) as { method: string; path: string; body: string };
    assert.equal(echo.method, 'POST');
    assert.equal(echo.path, '/svc/pub/echo?q=1');
    assert.equal(JSON.parse(echo.body).method, 'tools/call');
    const seen = cluster.seen.at(-1)!;
    assert.equal(seen.auth, 'tok-alice', "the replay carries the agent's Session token");
    assert.equal(seen.authorization, undefined, "the local client's credential is not forwarded");
    assert.equal(agent.stats().published, 1);
  } finally {
    await agent.close();
    await cluster.close();
  }
});

test('the gateway decides: a Session it refuses gets its 401 back on the published port', async () => {
  const cluster = await startCluster();
  const { agent, base } = await publishingAgent(cluster.port, 'tok-bob');
  try {
    await waitAgentState(agent, (s) => s.state === 'connected');
    const res = await request(`${base}/echo`);
    assert.equal(res.statusCode, 401);
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'OCT_ERR_UNAUTHENTICATED');
    assert.equal(cluster.seen.at(-1)!.auth, 'tok-bob');
  } finally {
    await agent.close();
    await cluster.close();
  }
});

test('SSE on a published port arrives event by event', async () => {
  const cluster = await startCluster();
  const { agent, base } = await publishingAgent(cluster.port);
  try {
    await waitAgentState(agent, (s) => s.state === 'connected');
    const res = await request(`${base}/sse`);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    const arrivals = (await readSseArrivals(res.body)).map((e) => e.at);
    const emits = sseEmits.at(-1)!;
    assert.equal(arrivals.length, 4);
    for (let i = 0; i < 3; i++) assert.ok(arrivals[i] < emits[i + 1], `event ${i} arrived after event ${i + 1} was emitted`);
  } finally {
    await agent.close();
    await cluster.close();
  }
});

test('a local client that goes away closes the replayed request', async () => {
  const cluster = await startCluster();
  const { agent, base } = await publishingAgent(cluster.port);
  try {
    await waitAgentState(agent, (s) => s.state === 'connected');
    const ac = new AbortController();
    const res = await request(`${base}/hang`, { signal: ac.signal });
    const it = res.body[Symbol.asyncIterator]();
    assert.equal(((await it.next()).value as Buffer).toString(), 'first\n');
    const entry = cluster.seen.find((e) => e.path === '/svc/pub/hang')!;
    assert.equal(entry.closedAt, undefined);
    const t0 = Date.now();
    ac.abort();
    while (entry.closedAt === undefined && Date.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 5));
    assert.ok(entry.closedAt !== undefined && entry.closedAt - t0 < 100, `closed after ${entry.closedAt! - t0} ms`);
  } finally {
    await agent.close();
    await cluster.close();
  }
});

test('published ports survive a cluster restart: 503 while away, working again after the agent reconnects', async () => {
  let cluster = await startCluster();
  const { agent, base } = await publishingAgent(cluster.port, 'tok-alice', 100);
  try {
    await waitAgentState(agent, (s) => s.state === 'connected');
    const port = cluster.port;
    await cluster.close();
    await waitAgentState(agent, (s) => s.state !== 'connected');
    const down = await request(`${base}/echo`);
    assert.equal(down.statusCode, 503);
    assert.equal(((await down.body.json()) as { error: { code: string } }).error.code, 'OCT_ERR_UPSTREAM_NOT_CONNECTED');
    cluster = await startCluster(port);
    await waitAgentState(agent, (s) => s.state === 'connected');
    const up = await request(`${base}/echo`);
    assert.equal(up.statusCode, 200);
    await up.body.dump();
  } finally {
    await agent.close();
    await cluster.close();
  }
});
