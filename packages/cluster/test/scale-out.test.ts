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
import { runBin, tempDir, user } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { eventually, startReplica, svc, type Replica } from './helpers/replicas.js';

// One name for the whole cluster (what a load balancer would answer to); tokens are issued for it by every replica.
const DOMAIN = 'localhost:18090';

let pg: TestPostgres | undefined;
let storeURL = '';
let replicas: Replica[] = [];
let upstream: TestUpstream;
let rootToken = '';

before(async () => {
  pg = await startTestPostgres('scale-out replicas on PostgreSQL');
  if (!pg) return;
  storeURL = await pg.createDatabase();
  upstream = await startUpstream((req, res, body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url, body })));
  // Three replicas started together: exactly one of them bootstraps.
  replicas = await Promise.all([0, 1, 2].map(() => startReplica(storeURL, DOMAIN)));
  const bootstrapped = replicas.filter((r) => /Bootstrap auth token/.test(r.output()));
  assert.equal(bootstrapped.length, 1, 'exactly one replica bootstraps');
  const authToken = readFileSync(join(bootstrapped[0].dataDir, 'bootstrap-token'), 'utf8').trim();
  // Logging in on one replica gives a Session every replica accepts.
  rootToken = (await replicas[2].api('').login(authToken)).accessToken;
});

after(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
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
