/**
 * `octelium-cluster start --workers 2` (design.md §9) on the default SQLite store: two processes share one port and
 * one WAL database; one bootstrap; a change made through one worker is in force in the other; a tunnel agent held by
 * one worker serves requests accepted by the other (forwarded over the worker's private loopback listener).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { adminClient, spawnCluster, startBin, tempDir, user, type BinProcess, type ClusterProcess } from './helpers/testing.js';
import { startUpstream, type TestUpstream } from './helpers/upstreams.js';
import { svc } from './helpers/replicas.js';

let proc: ClusterProcess;
let upstream: TestUpstream;
let agent: BinProcess | undefined;

/** One request on a fresh connection, so successive requests are spread over the workers. */
function freshGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  upstream = await startUpstream((req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url, pid: process.pid })));
  proc = await spawnCluster(tempDir(), ['--workers', '2', '--container-runtime', 'none']);
  // cluster.json appears when the first worker listens; wait for both.
  const deadline = Date.now() + 20_000;
  while ((proc.output().match(/octelium-cluster listening on/g)?.length ?? 0) < 2) {
    assert.ok(Date.now() < deadline, `both workers did not start:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
});

after(async () => {
  await agent?.stop();
  await proc?.stop();
  await upstream?.close();
});

test('two workers, one port, one bootstrap; a change through one worker is seen by both within 1 s', async () => {
  const out = proc.output();
  assert.equal(out.match(/Bootstrap auth token/g)?.length, 1, 'exactly one worker bootstraps');
  const api = await adminClient(proc.info.domain, proc.dataDir);
  await api.apply({ resources: [svc('echo', { isAnonymous: true, config: { upstream: { url: upstream.url } } })] });
  const t0 = Date.now();
  // Ten fresh connections in a row land on both workers (round-robin); every one must already see the Service.
  for (;;) {
    const results = await Promise.all(Array.from({ length: 10 }, () => freshGet(`${proc.info.url}/svc/echo/x`)));
    if (results.every((r) => r.status === 200)) break;
    assert.ok(Date.now() - t0 < 1000, `not in force on every worker within 1 s: ${results.map((r) => r.status).join(',')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('a tunnel agent held by one worker serves requests accepted by either', async () => {
  const api = await adminClient(proc.info.domain, proc.dataDir);
  await api.apply({ resources: [user('w-agent'), svc('w-laptop', { isAnonymous: true, config: { upstream: { url: upstream.url, user: 'w-agent' } } })] });
  const { token } = await api.createCredential({ apiVersion: 'core/v1', kind: 'Credential', metadata: { name: 'w-agent-auth' }, spec: { type: 'AUTH_TOKEN', user: 'w-agent' } });
  agent = startBin('octelium', ['connect', '--domain', proc.info.domain, '--auth-token', token.authenticationToken!, '--serve', 'w-laptop'], { HOME: tempDir('octelium-home-') });
  await agent.waitFor(/connected to .* as w-agent; serving w-laptop/);
  // The holding worker records the agent within a heartbeat (1 s); the other then forwards to it.
  await new Promise((r) => setTimeout(r, 1200));
  const results = await Promise.all(Array.from({ length: 12 }, () => freshGet(`${proc.info.url}/svc/w-laptop/hello`)));
  assert.deepEqual(results.map((r) => r.status), Array(12).fill(200), results.map((r) => r.body).join('\n'));
  assert.ok(results.every((r) => JSON.parse(r.body).path === '/hello'));
});

test('SIGTERM stops every worker and the primary exits 0', async () => {
  assert.equal(await proc.stop('SIGTERM'), 0);
  const r = await freshGet(`${proc.info.url}/healthz`).catch((e: NodeJS.ErrnoException) => e.code);
  assert.equal(r, 'ECONNREFUSED');
});
