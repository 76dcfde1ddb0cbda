/**
 * Scale-out end to end (issue 15, design.md §9): real `octelium-cluster start --store postgres://…` replica
 * processes on one real PostgreSQL 15. What one replica does, every other sees; one bootstrap; conflicting writes
 * from two replicas give one 409; a replica of another domain, or a store that is down, is refused at start.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OcteliumError } from '@octelium-ts/shared';
import { readSseArrivals, runBin, startBin, startDemoMcpServer, tempDir, user, type BinProcess } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { eventually, startBalancer, startReplica, svc, type Balancer, type Replica } from './helpers/replicas.js';
import pgLib from 'pg';

// One name for the whole cluster (what a load balancer would answer to); tokens are issued for it by every replica.
const DOMAIN = 'localhost:18090';

let pg: TestPostgres | undefined;
let storeURL = '';
let replicas: Replica[] = [];
let upstream: TestUpstream;
let rootToken = '';
let laptop: TestUpstream;
let lbTargets: number[] = [];
let lb: Balancer;
/** Lockstep SSE (/lockstep): the client confirms each event it received; the upstream waits for that before the next. */
const confirmations = new Map<number, () => void>();
function receivedByClient(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    confirmations.set(i, () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
const agents: BinProcess[] = [];

before(async () => {
  pg = await startTestPostgres('scale-out replicas on PostgreSQL');
  if (!pg) return;
  storeURL = await pg.createDatabase();
  upstream = await startUpstream((req, res, body) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url, body })));
  // What an `octelium connect` agent serves from behind NAT: SSE events 150 ms apart, and JSON.
  laptop = await startUpstream(async (req, res, body) => {
    if (req.url === '/lockstep') {
      // Each event is written only once the test's client has received the one before: a gateway or tunnel that held
      // events back would leave the next unwritten (no timing threshold, which a loaded machine's stalls break).
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (let i = 0; i < 5 && !res.destroyed; i++) {
        const received = receivedByClient(i);
        res.write(`data: tick-${i}\n\n`);
        if (!(await received)) {
          res.write('data: not-received-within-10s\n\n');
          break;
        }
      }
      return void res.end();
    }
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (let i = 0; i < 5 && !res.destroyed; i++) {
        res.write(`data: tick-${i}\n\n`);
        await new Promise((r) => setTimeout(r, 150));
      }
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served: 'laptop', body }));
  });
  lb = await startBalancer(() => lbTargets);
  // Three replicas started together: exactly one of them bootstraps.
  replicas = await Promise.all([0, 1, 2].map(() => startReplica(storeURL, DOMAIN, ['--replica-timeout', '1500'])));
  const bootstrapped = replicas.filter((r) => /Bootstrap auth token/.test(r.output()));
  assert.equal(bootstrapped.length, 1, 'exactly one replica bootstraps');
  const authToken = readFileSync(join(bootstrapped[0].dataDir, 'bootstrap-token'), 'utf8').trim();
  // Logging in on one replica gives a Session every replica accepts.
  rootToken = (await replicas[2].api('').login(authToken)).accessToken;
});

after(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(replicas.map((r) => r.stop()));
  await lb?.close();
  await laptop?.close();
  await upstream?.close();
  pg?.close();
});

test('every replica wrote its own cluster.json with the shared domain, and reports ready', async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  for (const r of replicas) {
    assert.equal(r.info.domain, DOMAIN);
    const ready = await fetch(`${r.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { store: string }).store, 'postgres');
  }
  const roots = (await replicas[0].api(rootToken).list('User')).items.filter((u) => u.metadata.name === 'root');
  assert.equal(roots.length, 1);
});

test('applied through replica A, in force on B within 1 s; an OAuth2 token minted by A works on B and C', async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const [a, b, c] = replicas;
  await a.api(rootToken).apply({ resources: [svc('echo', { config: { upstream: { url: upstream.url } } }), user('bot')] });
  const { tookMs } = await eventually(async () => (await fetch(`${b.url}/svc/echo/x`)).status !== 404, 1000, 10);
  assert.ok(tookMs <= 1000, `B saw the Service after ${tookMs} ms`);
  const cred = await a.api(rootToken).createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'bot-oauth' }, spec: { type: 'OAUTH2', user: 'bot' } });
  const tokenRes = await fetch(`${a.url}/oauth2/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: cred.token.clientID!, client_secret: cred.token.clientSecret! }) });
  assert.equal(tokenRes.status, 200);
  const jwt = ((await tokenRes.json()) as { access_token: string }).access_token;
  for (const r of [b, c]) {
    const res = await eventually(async () => {
      const x = await fetch(`${r.url}/svc/echo/hello`, { headers: { authorization: `Bearer ${jwt}` } });
      return x.status === 200 ? x : undefined;
    }, 2000);
    assert.equal(((await res.value.json()) as { path: string }).path, '/hello');
  }
  // Deleting the Credential on C revokes the token on A.
  await c.api(rootToken).delete('Credential', 'bot-oauth');
  await eventually(async () => (await fetch(`${a.url}/svc/echo/hello`, { headers: { authorization: `Bearer ${jwt}` } })).status === 401, 2000);
});

test('two replicas applying the same Service from the same resourceVersion: one 409, no lost update', async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const [a, b] = replicas;
  const created = await a.api(rootToken).create(svc('contested', { config: { upstream: { url: upstream.url } } }));
  await eventually(async () => (await b.api(rootToken).get('Service', 'contested').catch(() => undefined)) !== undefined);
  const rv = created.metadata.resourceVersion;
  const results = await Promise.allSettled([
    a.api(rootToken).apply({ resources: [svc('contested', { config: { upstream: { url: `${upstream.url}/a` } } }, rv)] }),
    b.api(rootToken).apply({ resources: [svc('contested', { config: { upstream: { url: `${upstream.url}/b` } } }, rv)] }),
  ]);
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(rejected.length, 1, JSON.stringify(results));
  assert.equal((rejected[0].reason as OcteliumError).code, 'OCT_ERR_CONFLICT');
  assert.match((rejected[0].reason as OcteliumError).message, /get it again and retry/);
  const winner = results[0].status === 'fulfilled' ? 'a' : 'b';
  for (const r of [a, b]) {
    const got = await eventually(async () => {
      const s = await r.api(rootToken).get('Service', 'contested');
      return (s.spec as { config: { upstream: { url: string } } }).config.upstream.url.endsWith(`/${winner}`) ? s : undefined;
    }, 1000);
    assert.ok(got.value);
  }
});

test('a replica with another --domain refuses to join; a store that is down stops the start with a clear error', async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const other = await runBin('octelium-cluster', ['start', '--store', storeURL, '--domain', 'other.example:443', '--port', '0', '--data-dir', tempDir()]);
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /belongs to the cluster with --domain localhost:18090/);
  const down = await runBin('octelium-cluster', ['start', '--port', '0', '--data-dir', tempDir()], { env: { OCTELIUM_STORE: 'postgres://octelium@127.0.0.1:1/nothing' } });
  assert.notEqual(down.code, 0);
  assert.match(down.stderr, /cannot use the cluster store \(PostgreSQL at 127\.0\.0\.1:1\/nothing\): connect ECONNREFUSED/);
});

test('an MCP session initialized through one replica is honoured by the others, and only for its owner', async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const [a, b, c] = replicas;
  const mcpServer = await startDemoMcpServer({ jsonResponse: true });
  try {
    await a.api(rootToken).apply({ resources: [svc('calc', { mode: 'MCP', config: { upstream: { url: mcpServer.url.replace(/\/mcp$/, '') } } }), user('other')] });
    const { token } = await a.api(rootToken).createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'other-access' }, spec: { type: 'ACCESS_TOKEN', user: 'other' } });
    const post = (r: Replica, bearer: string, body: unknown, extra: Record<string, string> = {}) => fetch(`${r.url}/svc/calc/mcp`, {
      method: 'POST', body: JSON.stringify(body),
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extra },
    });
    const init = await eventually(async () => {
      const r = await post(a, rootToken, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'scale-out', version: '1' } } });
      return r.status === 200 ? r : undefined;
    }, 3000);
    const sid = init.value.headers.get('mcp-session-id')!;
    assert.ok(sid);
    const session = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    await post(a, rootToken, { jsonrpc: '2.0', method: 'notifications/initialized' }, session);
    const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
    const onB = await post(b, rootToken, list, session);
    assert.equal(onB.status, 200, await onB.clone().text());
    assert.ok(((await onB.json()) as { result: { tools: unknown[] } }).result.tools.length > 0);
    const hijack = await post(c, token.accessToken!, list, session);
    assert.equal(hijack.status, 404, 'another principal presenting the id on a third replica');
  } finally {
    await mcpServer.close();
  }
});

test('an agent connected to replica A serves calls arriving at B and C (SSE event by event); kill -9 A: the agent moves, calls succeed again, nothing applied is lost', { timeout: 60_000 }, async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const [a, b, c] = replicas;
  const admin = a.api(rootToken);
  await admin.apply({ resources: [user('laptop-owner'), svc('laptop', { config: { upstream: { url: laptop.url, user: 'laptop-owner' } } })] });
  const { token } = await admin.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'laptop-owner-auth' }, spec: { type: 'AUTH_TOKEN', user: 'laptop-owner' } });
  // The agent dials the load balancer, which sends it to A (the only target for now).
  lbTargets = [a.info.port];
  const agent = startBin('octelium', ['connect', '--domain', lb.addr, '--auth-token', token.authenticationToken!, '--serve', 'laptop'], { HOME: tempDir('octelium-home-') });
  agents.push(agent);
  await agent.waitFor(/connected to .* as laptop-owner; serving laptop/);
  const auth = { authorization: `Bearer ${rootToken}` };

  // B holds no agent: the request is forwarded to A, and the SSE events come through one by one.
  const sse = await eventually(async () => {
    const r = await fetch(`${b.url}/svc/laptop/lockstep`, { headers: auth });
    return r.status === 200 ? r : undefined;
  }, 5000);
  const arrivals = await readSseArrivals((async function* () {
    for await (const chunk of sse.value.body as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(chunk);
  })(), Infinity, (e) => confirmations.get(Number(/^tick-(\d+)$/.exec(e.data)?.[1]))?.());
  assert.deepEqual(arrivals.map((e) => e.data), ['tick-0', 'tick-1', 'tick-2', 'tick-3', 'tick-4'], 'each event reached the client before the upstream wrote the next');
  const viaC = await fetch(`${c.url}/svc/laptop/mcp`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"n":1}' });
  assert.equal(viaC.status, 200);
  assert.deepEqual(await viaC.json(), { served: 'laptop', body: '{"n":1}' });

  // Applied through A just before it dies: kept.
  await admin.apply({ resources: [svc('applied-before-kill', { config: { upstream: { url: upstream.url } } })] });
  // Mid-traffic: a stream through B to A's agent is open when A is killed.
  lbTargets = [a.info.port, b.info.port, c.info.port];
  const inflight = await fetch(`${b.url}/svc/laptop/events`, { headers: auth });
  assert.equal(inflight.status, 200);
  const reader = (inflight.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  a.proc.kill('SIGKILL');
  const cut = await (async () => {
    try {
      for (;;) if ((await reader.read()).done) return 'ended';
    } catch {
      return 'error';
    }
  })();
  assert.ok(cut === 'error' || cut === 'ended', 'the in-flight stream ends (never hangs)');
  const t0 = Date.now();
  await agent.waitFor(/connected to .* as laptop-owner; serving laptop[\s\S]*connected to .* as laptop-owner; serving laptop/, 15_000);
  const again = await eventually(async () => {
    const r = await fetch(`${c.url}/svc/laptop/mcp`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"n":2}' });
    return r.status === 200 ? r : undefined;
  }, 10_000, 100);
  assert.deepEqual(await again.value.json(), { served: 'laptop', body: '{"n":2}' });
  t.diagnostic(`calls succeed again ${Date.now() - t0} ms after kill -9 of the holding replica`);
  assert.equal((await b.api(rootToken).get('Service', 'applied-before-kill')).metadata.name, 'applied-before-kill');
  replicas = replicas.filter((r) => r !== a);
});

test('octelium connect -p on a replica without the serving agent: published requests are forwarded to it', { timeout: 30_000 }, async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  // Which live replica holds the serving agent now (it moved after the kill)? Publish from the other one.
  const db = new pgLib.Client({ connectionString: storeURL });
  await db.connect();
  let holderURL: string;
  try {
    const { value } = await eventually(async () => (await db.query("SELECT r.advertise_url FROM tunnel_agents a JOIN replicas r ON r.id = a.replica_id WHERE a.user_name = 'laptop-owner' AND r.expires_at > $1", [Date.now()])).rows[0]?.advertise_url as string | undefined, 5000, 100);
    holderURL = value;
  } finally {
    await db.end();
  }
  const other = replicas.find((r) => !holderURL.endsWith(`:${r.info.port}`))!;
  assert.ok(other, `a replica other than ${holderURL}`);
  const { token } = await other.api(rootToken).createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'laptop-owner-publish' }, spec: { type: 'AUTH_TOKEN', user: 'laptop-owner' } });
  const publisher = startBin('octelium', ['connect', '--domain', other.addr, '--auth-token', token.authenticationToken!, '-p', 'laptop:0'], { HOME: tempDir('octelium-home-') });
  agents.push(publisher);
  const [, address] = await publisher.waitFor(/publishing laptop on (http:\/\/127\.0\.0\.1:\d+)/);
  const res = await eventually(async () => {
    const r = await fetch(`${address}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":3}' });
    return r.status === 200 ? r : undefined;
  }, 5000, 100);
  assert.deepEqual(await res.value.json(), { served: 'laptop', body: '{"n":3}' });
});

test('a replica link with a wrong replica token is refused with 401 before any stream', async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${replicas[0].url}/api/v1/connect`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', authorization: 'Replica not-the-token' } });
    req.on('response', (res) => resolve(res.statusCode!));
    req.on('upgrade', () => reject(new Error('upgraded with a wrong replica token')));
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 401);
});

test('partition: a holding replica that accepts but never answers gives 504 in bounded time, never a hang', { timeout: 30_000 }, async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const b = replicas[replicas.length - 1];
  // A replica that is "there" (lease valid, agent registered) but behind a partition: it takes connections and
  // never answers.
  const { createServer } = await import('node:net');
  const held: import('node:net').Socket[] = [];
  const blackhole = createServer((s) => void held.push(s));
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  const port = (blackhole.address() as { port: number }).port;
  const db = new pgLib.Client({ connectionString: storeURL });
  await db.connect();
  try {
    await db.query('INSERT INTO replicas (id, advertise_url, started_at, expires_at) VALUES ($1, $2, $3, $4)', ['ghost', `http://127.0.0.1:${port}`, Date.now(), Date.now() + 600_000]);
    await db.query('INSERT INTO tunnel_agents (agent_id, replica_id, user_name, services, serve_all) VALUES ($1, $2, $3, $4, 0)', ['ghost-agent', 'ghost', 'ghost-owner', '["ghost-svc"]']);
    await b.api(rootToken).apply({ resources: [user('ghost-owner'), svc('ghost-svc', { config: { upstream: { url: 'http://127.0.0.1:9', user: 'ghost-owner' } } })] });
    await eventually(async () => (await fetch(`${b.url}/svc/ghost-svc/x`)).status !== 404);
    const t0 = Date.now();
    const res = await fetch(`${b.url}/svc/ghost-svc/x`, { headers: { authorization: `Bearer ${rootToken}` } });
    const took = Date.now() - t0;
    assert.equal(res.status, 504, await res.text());
    assert.ok(took < 5000, `answered in ${took} ms`);
  } finally {
    await db.query("DELETE FROM tunnel_agents WHERE replica_id = 'ghost'");
    await db.query("DELETE FROM replicas WHERE id = 'ghost'");
    await db.end();
    for (const s of held) s.destroy();
    blackhole.close();
  }
});

test('PostgreSQL restarted under running replicas: writes fail fast with 503, the gateway keeps serving, all recover without a restart', { timeout: 60_000 }, async (t) => {
  if (!pg) return t.skip('no PostgreSQL');
  const [b, c] = replicas;
  const auth = { authorization: `Bearer ${rootToken}` };
  pg.stop();
  try {
    const t0 = Date.now();
    const write = await b.api(rootToken).apply({ resources: [svc('during-outage', { config: { upstream: { url: upstream.url } } })] }).then(() => undefined, (e: OcteliumError) => e);
    assert.equal(write?.httpStatus, 503, String(write));
    assert.match(write!.message, /cluster store \(PostgreSQL at .*\) is unreachable/);
    assert.ok(Date.now() - t0 < 3000, `failed after ${Date.now() - t0} ms`);
    assert.equal((await fetch(`${c.url}/readyz`)).status, 503);
    // Resources, Sessions and tokens are in memory: the gateway does not need the store per request.
    assert.equal((await fetch(`${c.url}/svc/echo/still`, { headers: auth })).status, 200);
  } finally {
    pg.start();
  }
  await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 200, 10_000, 100);
  await eventually(() => b.api(rootToken).apply({ resources: [svc('after-outage', { config: { upstream: { url: upstream.url } } })] }).then(() => true), 10_000, 200);
  // The LISTEN connection came back too: C sees B's change.
  await eventually(async () => (await c.api(rootToken).get('Service', 'after-outage').catch(() => undefined)) !== undefined, 5000, 100);
});
