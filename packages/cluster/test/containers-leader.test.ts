/**
 * One container reconciler per cluster (issue 15, docs/containers.md "One leader"): two real replica processes on one
 * real PostgreSQL 15 and a real Docker daemon. Only the holder of the `containers` lease creates containers; both
 * replicas route to them (the leader shares its endpoints through the store); kill -9 of the leader hands the lease
 * to the other replica within seconds, and it reconciles the next change; a clean stop hands it over at once. The
 * same with `--workers 2` on SQLite. Every container carries its test cluster's own octelium.io/cluster label and is
 * removed by id at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type Docker from 'dockerode';
import Database from 'better-sqlite3';
import pgLib from 'pg';
import type { Resource } from '@octelium-ts/shared';
import { mcpImage, removeClusterContainers, requireDocker } from './helpers/docker.js';
import { startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import { eventually, startReplica, svc, type Replica } from './helpers/replicas.js';
import { adminClient, spawnCluster, tempDir, type ClusterProcess } from './helpers/testing.js';
import type { ContainerStatus } from '../src/containers/status.js';

const DOMAIN = 'localhost:18091';

let docker: Docker | undefined;
let pg: TestPostgres | undefined;
let storeURL = '';
let image = '';
let replicas: Replica[] = [];
let rootToken = '';
let clusterId = '';

/** One query against the shared store, as an operator would look at it. */
async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  const db = new pgLib.Client({ connectionString: storeURL });
  await db.connect();
  try {
    return (await db.query(sql, params)).rows as T[];
  } finally {
    await db.end();
  }
}

/** The replica holding a live `containers` lease, if any. */
async function leader(): Promise<Replica | undefined> {
  const [row] = await query<{ advertise_url: string }>(
    "SELECT r.advertise_url FROM leader_leases l JOIN replicas r ON r.id = l.holder WHERE l.name = 'containers' AND l.expires_at > $1", [Date.now()]);
  return row && replicas.find((r) => row.advertise_url.endsWith(`:${r.info.port}`));
}

const calc = (greeting: string): Resource => svc('calc', {
  config: { upstream: { container: { image, port: 8080, env: [{ name: 'GREETING', value: greeting }] } } },
});

const containersOfCalc = () => docker!.listContainers({ all: true, filters: { label: [`octelium.io/cluster=${clusterId}`, 'octelium.io/service=calc.default'] } });

const statusOf = async (r: Replica) => ((await r.api(rootToken).get('Service', 'calc')).status as { container?: ContainerStatus } | undefined)?.container;

/** tools/call add through a replica's gateway: the sum, and which container (its hostname) answered. */
async function add(r: Replica, a: number, b: number): Promise<{ sum: string; container: string }> {
  const res = await fetch(`${r.url}/svc/calc/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${rootToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a, b } } }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status} through ${r.addr}: ${text}`);
  const body = JSON.parse(text) as { result?: { content: Array<{ text: string }> } };
  return { sum: body.result!.content[0].text, container: res.headers.get('x-replica') ?? '' };
}

/** One POST on a connection of its own (closed after it), so successive requests are spread over the workers. */
function postOnFreshConnection(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent: false, headers: { ...headers, connection: 'close' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('managed containers with two replicas: one leader reconciles', { timeout: 240_000 }, () => {
  before(async (t) => {
    docker = await requireDocker(t as never);
    if (!docker) return;
    pg = await startTestPostgres('container leader election on PostgreSQL');
    if (!pg) return;
    image = await mcpImage(docker);
    storeURL = await pg.createDatabase();
    // Started together: both compete for the lease from their first heartbeat.
    replicas = await Promise.all([0, 1].map(() => startReplica(storeURL, DOMAIN, ['--container-runtime', 'docker'])));
    const bootstrapped = replicas.find((r) => /Bootstrap auth token/.test(r.output()))!;
    rootToken = (await replicas[0].api('').login(readFileSync(join(bootstrapped.dataDir, 'bootstrap-token'), 'utf8').trim())).accessToken;
    clusterId = (await query<{ value: string }>("SELECT value FROM meta WHERE key = 'containerClusterID'"))[0].value;
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    if (docker && clusterId) console.log(`# removed ${await removeClusterContainers(docker, clusterId)} leftover containers`);
    pg?.close();
  });

  test('exactly one replica leads; one container is created; MCP calls through both replicas reach it', async (t) => {
    if (!docker || !pg) return t.skip('no Docker or no PostgreSQL');
    const first = await eventually(leader, 5_000);
    const leaders = replicas.filter((r) => /now leads the container reconciler/.test(r.output()));
    assert.deepEqual(leaders, [first.value], 'one replica says it leads, and it is the lease holder');
    const [follower] = replicas.filter((r) => r !== first.value);

    // Applied through the follower: the leader reconciles; the status it writes is read back through the follower.
    await follower.api(rootToken).apply({ resources: [calc('v1')] });
    const st = await eventually(async () => ((await statusOf(follower))?.state === 'Running' ? statusOf(follower) : undefined), 60_000, 250);
    assert.equal(st.value?.ready, 1);

    const calls = await Promise.all(replicas.map((r) => eventually(() => add(r, 4, 7), 5_000, 100)));
    const [c] = await containersOfCalc();
    for (const call of calls) {
      assert.equal(call.value.sum, '11');
      assert.equal(call.value.container, c.Id.slice(0, 12), 'both replicas reach the one container');
    }
    // A few resyncs later (every 5 s on the leader): still one container, never a second one from the follower.
    await new Promise((r) => setTimeout(r, 6_000));
    const all = await containersOfCalc();
    assert.deepEqual(all.map((x) => x.Id), [c.Id]);
    assert.doesNotMatch(follower.output(), /now leads the container reconciler/, 'the follower never led');
  });

  test('kill -9 the leader: the other replica takes the lease within seconds and reconciles a new env', { timeout: 120_000 }, async (t) => {
    if (!docker || !pg) return t.skip('no Docker or no PostgreSQL');
    const dead = (await leader())!;
    const survivor = replicas.find((r) => r !== dead)!;
    const [before] = await containersOfCalc();

    dead.proc.kill('SIGKILL');
    const t0 = Date.now();
    // The container keeps running, and the survivor keeps routing to it while nobody leads.
    assert.equal((await add(survivor, 1, 2)).sum, '3');
    const { tookMs } = await eventually(async () => (await leader()) === survivor, 15_000, 100);
    t.diagnostic(`the survivor holds the lease ${tookMs} ms after kill -9 of the leader (lease 5 s, heartbeat 1 s)`);
    assert.ok(tookMs < 10_000, `took over after ${tookMs} ms`);
    await eventually(() => /now leads the container reconciler/.test(survivor.output()), 5_000);
    replicas = [survivor];
    assert.deepEqual((await containersOfCalc()).map((c) => c.Id), [before.Id], 'the new leader adopted the running container, not replaced it');

    // A change after the takeover: the new leader replaces the container (its env is part of the spec hash).
    await survivor.api(rootToken).apply({ resources: [calc('v2')] });
    const replaced = await eventually(async () => {
      const list = await containersOfCalc();
      if (list.length !== 1 || list[0].Id === before.Id || list[0].State !== 'running') return undefined;
      const info = await docker!.getContainer(list[0].Id).inspect();
      return info.Config.Env.includes('GREETING=v2') ? list[0] : undefined;
    }, 60_000, 250);
    t.diagnostic(`env change reconciled by the new leader in ${replaced.tookMs} ms`);
    await eventually(async () => (await statusOf(survivor))?.state === 'Running', 30_000, 250);
    const after = await eventually(async () => {
      const r = await add(survivor, 5, 6);
      return r.container === replaced.value.Id.slice(0, 12) ? r : undefined;
    }, 10_000, 100);
    assert.equal(after.value.sum, '11');
  });

  test('a clean stop gives the lease up: a replica that joined meanwhile leads within two heartbeats', { timeout: 60_000 }, async (t) => {
    if (!docker || !pg) return t.skip('no Docker or no PostgreSQL');
    const [leading] = replicas;
    const joined = await startReplica(storeURL, DOMAIN, ['--container-runtime', 'docker']);
    replicas.push(joined);
    // A replica that starts while another leads learns the endpoints from the store at once.
    assert.equal((await eventually(() => add(joined, 2, 2), 5_000, 100)).value.sum, '4');
    assert.equal(await leader(), leading);
    const [container] = await containersOfCalc();

    const t0 = Date.now();
    assert.equal(await leading.stop(), 0);
    const { tookMs } = await eventually(async () => (await leader()) === joined, 5_000, 50);
    t.diagnostic(`lease taken ${Date.now() - t0} ms after SIGTERM of the leader (its stop included)`);
    assert.ok(tookMs < 2_500, `took over ${tookMs} ms after the leader stopped`);
    replicas = [joined];
    assert.equal((await add(joined, 3, 4)).sum, '7');
    assert.deepEqual((await containersOfCalc()).map((c) => c.Id), [container.Id], 'a clean stop of the leader leaves the containers running');
  });
});

describe('managed containers with --workers 2 on SQLite: one worker reconciles', { timeout: 120_000 }, () => {
  let proc: ClusterProcess | undefined;
  let workersClusterId = '';

  after(async () => {
    await proc?.stop();
    if (docker && workersClusterId) console.log(`# removed ${await removeClusterContainers(docker, workersClusterId)} leftover containers`);
  });

  test('one worker leads, one container is created, requests on fresh connections (node:cluster spreads them over both workers) reach it', async (t) => {
    docker ??= await requireDocker(t);
    if (!docker) return;
    image ||= await mcpImage(docker);
    proc = await spawnCluster(tempDir(), ['--workers', '2', '--container-runtime', 'docker']);
    await eventually(() => (proc!.output().match(/octelium-cluster listening on/g)?.length ?? 0) === 2, 20_000);
    const db = new Database(join(proc.dataDir, 'octelium.db'), { readonly: true });
    try {
      workersClusterId = (db.prepare("SELECT value FROM meta WHERE key = 'containerClusterID'").get() as { value: string }).value;
    } finally {
      db.close();
    }
    const api = await adminClient(proc.info.domain, proc.dataDir);
    await api.apply({ resources: [calc('v1')] });
    await eventually(async () => ((await api.get('Service', 'calc')).status as { container?: ContainerStatus } | undefined)?.container?.state === 'Running', 60_000, 250);
    assert.equal(proc.output().match(/now leads the container reconciler/g)?.length, 1, 'exactly one worker leads');

    // Fresh connections: node:cluster hands them to the workers in turn, so both gateways route here.
    const url = `http://127.0.0.1:${proc.info.port}/svc/calc/mcp`;
    const sums = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const res = await postOnFreshConnection(url, { authorization: `Bearer ${api.accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'add', arguments: { a: i, b: 1 } } }));
      assert.equal(res.status, 200, res.body);
      return (JSON.parse(res.body) as { result: { content: Array<{ text: string }> } }).result.content[0].text;
    }));
    assert.deepEqual(sums, Array.from({ length: 8 }, (_, i) => String(i + 1)));
    const list = await docker.listContainers({ all: true, filters: { label: [`octelium.io/cluster=${workersClusterId}`] } });
    assert.equal(list.length, 1, 'one container for the cluster, not one per worker');
  });
});
