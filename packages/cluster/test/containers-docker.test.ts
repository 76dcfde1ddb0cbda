/**
 * Managed containers end to end on a real Docker daemon and a real private registry (issue 14, design.md §8):
 * the seed's container Service shape → Running → MCP SDK client through the gateway with an OAuth2 client-credentials
 * token → limits in `docker inspect` → scale 1→3 spreads requests → image change replaces with no failed request →
 * a killed replica comes back → delete leaves nothing. Every container carries this test cluster's own
 * octelium.io/cluster label and is removed by id at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { parse } from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { request } from 'undici';
import { KINDS, type ContainerLogLine, type Resource } from '@octelium-ts/shared';
import { oauth2Token, SEED_DIR, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { mcpImage, removeClusterContainers, requireBinary, requireDocker, startRegistry, type Registry } from './helpers/docker.js';
import type { ContainerStatus } from '../src/containers/status.js';

let docker: Docker | undefined;
let registry: Registry;
let tc: TestCluster;
let token: string;
let v1: string;
let v2: string;
const logLines: string[] = [];

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

const statusOf = async (name: string) => ((await tc.api.get('Service', name)).status as { container?: ContainerStatus } | undefined)?.container;
const containersOf = (svc: string) => docker!.listContainers({ filters: { label: [`octelium.io/cluster=${tc.cluster.containers.clusterId}`, `octelium.io/service=${svc}.default`] } });

async function mcpClient(svc: string): Promise<Client> {
  const client = new Client({ name: 'containers-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${tc.cluster.url}/svc/${svc}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

async function add(client: Client, a: number, b: number): Promise<string> {
  const r = await client.callTool({ name: 'add', arguments: { a, b } });
  return (r.content as Array<{ text: string }>)[0].text;
}

/** The seed's 02-managed-container.yaml as written, with its image pointed at the local registry. */
function seedService(name: string, image: string): Resource {
  const seed = parse(readFileSync(join(SEED_DIR, '02-managed-container.yaml'), 'utf8')) as Resource;
  const spec = structuredClone(seed.spec) as { config: { upstream: { container: Record<string, unknown> } } };
  const c = spec.config.upstream.container;
  c.image = image;
  (c.credentials as { usernamePassword: { username: string } }).usernamePassword.username = registry.username;
  c.env = [{ name: 'LOG', value: 'debug' }, { name: 'API_KEY', fromSecret: 'calc-api-key' }];
  c.args = ['--verbose'];
  return { kind: 'Service', metadata: { name }, spec } as Resource;
}

describe('managed containers on Docker', { timeout: 240_000 }, () => {
  before(async (t) => {
    docker = await requireDocker(t as never);
    if (!docker || !requireBinary(t as never, '/usr/bin/docker-registry', 'docker-registry')) return;
    const started = Date.now();
    const image = await mcpImage(docker);
    registry = await startRegistry();
    const repo = `octelium-test/calc-${Math.random().toString(36).slice(2, 8)}`;
    v1 = await registry.push(docker, image, `${repo}:v1`);
    v2 = await registry.push(docker, image, `${repo}:v2`);
    console.log(`# image ${image} built/cached and pushed twice in ${Date.now() - started} ms`);
    tc = await startTestCluster({ options: { containers: { runtime: 'docker', docker: { readyTimeoutMs: 20_000 }, reconciler: { resyncMs: 1_000, backoff: { initialMs: 500, maxMs: 4_000 }, drainTimeoutMs: 10_000, log: (m) => logLines.push(m) } } } });
    assert.equal(tc.cluster.containers.runtime, 'docker');
    await tc.api.apply({ resources: [
      user('calc-agent', { type: 'WORKLOAD' }),
      // The seed's Secret name for the registry password, and an env Secret.
      { kind: 'Secret', metadata: { name: 'ghcr-token' }, spec: {}, data: { value: registry.password } } as Resource,
      { kind: 'Secret', metadata: { name: 'calc-api-key' }, spec: {}, data: { value: 'env-secret-value-42' } } as Resource,
    ] } as never);
    token = await oauth2Token(tc.api, tc.cluster.url, 'calc-agent');
  });

  after(async () => {
    if (!docker) return;
    await tc?.close();
    if (tc) console.log(`# removed ${await removeClusterContainers(docker, tc.cluster.containers.clusterId)} leftover containers`);
    await registry?.stop();
    // Tags the runtime pulled from this run's registry (the image itself stays cached under its content-hash tag).
    for (const ref of [v1, v2]) if (ref) await docker.getImage(ref).remove({ noprune: true }).catch(() => undefined);
  });

  test('the seed container Service pulls with the Secret, runs, serves add through the gateway, with its limits', async (t) => {
    if (!docker) return t.skip();
    const started = Date.now();
    await tc.api.apply({ resources: [seedService('my-mcp', v1)] } as never);
    const st = await waitFor('my-mcp Running', async () => ((await statusOf('my-mcp'))?.state === 'Running' ? statusOf('my-mcp') : undefined));
    console.log(`# apply → Running (pull from the private registry + start + ready) in ${Date.now() - started} ms`);
    assert.deepEqual({ ...st, message: '' }, { state: 'Running', replicas: 1, ready: 1, message: '' });

    const client = await mcpClient('my-mcp');
    assert.equal(await add(client, 4, 7), '11');
    await client.close();

    const [c] = await containersOf('my-mcp');
    const info = await docker.getContainer(c.Id).inspect();
    assert.equal(info.HostConfig.NanoCpus, 1_000 * 1_000_000, 'seed cpu.millicores 1000 → NanoCpus');
    assert.equal(info.HostConfig.Memory, 2_000 * 1024 * 1024, 'seed memory.megabytes 2000 → Memory');
    assert.equal(info.HostConfig.PortBindings?.['8080/tcp']?.[0]?.HostIp, '127.0.0.1');
    assert.equal(info.Config.Labels['octelium.io/service'], 'my-mcp.default');
    assert.ok(info.Config.Env.includes('API_KEY=env-secret-value-42'), 'env fromSecret resolved');
    assert.ok(info.Config.Env.includes('LOG=debug'));
    assert.deepEqual(info.Config.Cmd, ['--verbose']);
    assert.equal(info.Config.Image, v1);

    const svc = await tc.api.get('Service', 'my-mcp');
    assert.ok(!JSON.stringify(svc).includes(registry.password), 'registry password not in the Service');
  });

  test('scaling 1 → 3 spreads requests over the ready replicas', async (t) => {
    if (!docker) return t.skip();
    const svc = await tc.api.get('Service', 'my-mcp');
    (svc.spec as { config: { upstream: { container: { replicas?: number } } } }).config.upstream.container.replicas = 3;
    const started = Date.now();
    await tc.api.apply({ resources: [{ kind: 'Service', metadata: { name: 'my-mcp' }, spec: svc.spec }] } as never);
    await waitFor('3 ready replicas', async () => {
      const s = await statusOf('my-mcp');
      return s?.state === 'Running' && s.ready === 3 && (await containersOf('my-mcp')).length === 3;
    });
    console.log(`# scale 1 → 3 ready in ${Date.now() - started} ms`);
    const client = await mcpClient('my-mcp');
    for (let i = 0; i < 12; i++) assert.equal(await add(client, i, 1), String(i + 1));
    await client.close();
    const counts: number[] = [];
    for (const c of await containersOf('my-mcp')) {
      const logs = (await docker.getContainer(c.Id).logs({ stdout: true, stderr: true, follow: false })).toString();
      counts.push(logs.split('tools/call add').length - 1);
    }
    console.log(`# tools/call add per replica: ${counts.join(', ')}`);
    assert.equal(counts.length, 3);
    assert.ok(counts.every((n) => n >= 3), `every replica served calls: ${counts}`);

    // Operator view: the STATE column of `octeliumctl get svc`, and the containers' output through the API.
    assert.equal(KINDS.Service.columns.find((c) => c.header === 'STATE')!.get(await tc.api.get('Service', 'my-mcp')), 'Running 3/3');
    const lines: ContainerLogLine[] = [];
    await tc.api.containerLogs('my-mcp', { tail: 200 }, (l) => lines.push(l));
    assert.equal(new Set(lines.filter((l) => l.text.includes('tools/call add')).map((l) => l.replica)).size, 3, 'logs of all 3 replicas');
    const followed: ContainerLogLine[] = [];
    const abort = new AbortController();
    const following = tc.api.containerLogs('my-mcp', { follow: true, tail: 0 }, (l) => followed.push(l), abort.signal);
    await new Promise((r) => setTimeout(r, 300));
    const c2 = await mcpClient('my-mcp');
    await add(c2, 1, 2);
    await c2.close();
    await waitFor('the followed log line', () => followed.some((l) => l.text.includes('tools/call add')) || undefined, 10_000);
    abort.abort();
    await following;
  });

  test('changing the image tag replaces the replicas with no failed request', async (t) => {
    if (!docker) return t.skip();
    const client = await mcpClient('my-mcp');
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    const load = Promise.all([0, 1].map(async () => {
      while (running) {
        try {
          if ((await add(client, 2, 3)) === '5') ok++;
          else failures.push('wrong answer');
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    }));
    const svc = await tc.api.get('Service', 'my-mcp');
    (svc.spec as { config: { upstream: { container: { image: string } } } }).config.upstream.container.image = v2;
    const started = Date.now();
    await tc.api.apply({ resources: [{ kind: 'Service', metadata: { name: 'my-mcp' }, spec: svc.spec }] } as never);
    await waitFor('only v2 replicas, 3 ready', async () => {
      const list = await containersOf('my-mcp');
      const s = await statusOf('my-mcp');
      return list.length === 3 && list.every((c) => c.Image === v2) && s?.state === 'Running' && s.ready === 3;
    }, 90_000);
    const took = Date.now() - started;
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await load;
    await client.close();
    console.log(`# replacement v1 → v2 (3 replicas) in ${took} ms; ${ok} calls during it, ${failures.length} failed`);
    assert.deepEqual(failures, []);
    assert.ok(ok > 10, `calls kept flowing (${ok})`);
  });

  test('a killed replica is replaced and the Service is Running 3/3 again', async (t) => {
    if (!docker) return t.skip();
    const before = await containersOf('my-mcp');
    const victim = before[0].Id;
    const started = Date.now();
    await docker.getContainer(victim).kill();
    await waitFor('3 ready replicas after the kill', async () => {
      const list = await containersOf('my-mcp');
      const s = await statusOf('my-mcp');
      if (list.length !== 3 || s?.state !== 'Running' || s.ready !== 3) return undefined;
      // Either Docker restarted it (restart policy) or the reconciler replaced it; both mean it serves again.
      const v = await docker!.getContainer(victim).inspect().catch(() => undefined);
      return !v || (v.State.Running && v.RestartCount > 0) || !list.some((c) => c.Id === victim);
    });
    console.log(`# killed replica back in ${Date.now() - started} ms`);
    const client = await mcpClient('my-mcp');
    for (let i = 0; i < 6; i++) assert.equal(await add(client, 1, 1), '2');
    await client.close();
  });

  test('dynamicConfig routes to a second container upstream (two image versions side by side)', async (t) => {
    if (!docker) return t.skip();
    const versions = (image: string, v: string) => ({ image, port: 8080, env: [{ name: 'IMAGE_VERSION', value: v }], credentials: { usernamePassword: { username: registry.username, password: { fromSecret: 'ghcr-token' } } } });
    await tc.api.apply({ resources: [{ kind: 'Service', metadata: { name: 'versions' }, spec: {
      mode: 'HTTP', isPublic: true,
      config: { upstream: { container: versions(v1, 'v1') } },
      dynamicConfig: {
        configs: [{ name: 'canary', upstream: { container: versions(v2, 'v2') } }],
        rules: [{ condition: { match: 'ctx.request.http.headers["x-version"] == "v2"' }, configName: 'canary' }],
      },
    } } as Resource] } as never);
    const st = await waitFor('both configs Running', async () => {
      const s = await statusOf('versions');
      return s?.state === 'Running' && s.ready === 2 ? s : undefined;
    });
    assert.deepEqual(Object.keys(st.configs ?? {}).sort(), ['canary', 'default']);
    const list = await containersOf('versions');
    const byConfig = (cfg: string) => list.filter((c) => c.Labels['octelium.io/config'] === cfg).map((c) => c.Id.slice(0, 12));
    const served = async (headers: Record<string, string>) => {
      const r = await request(`${tc.cluster.url}/svc/versions/mcp`, {
        method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 1 } } }),
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      });
      assert.equal(r.statusCode, 200);
      await r.body.dump();
      return String(r.headers['x-replica']);
    };
    assert.deepEqual(byConfig('canary'), [await served({ 'x-version': 'v2' })]);
    assert.deepEqual(byConfig('default'), [await served({})]);
    await tc.api.delete('Service', 'versions');
    await waitFor('versions containers gone', async () => (await containersOf('versions')).length === 0);
  });

  test('deleting the Service leaves no container', async (t) => {
    if (!docker) return t.skip();
    const started = Date.now();
    await tc.api.delete('Service', 'my-mcp');
    // Stopped ones count too (all: true): a replica is stopped, then removed, and only removal is "none left".
    const left = () => docker!.listContainers({ all: true, filters: { label: [`octelium.io/service=my-mcp.default`, `octelium.io/cluster=${tc.cluster.containers.clusterId}`] } });
    await waitFor('no container left', async () => (await left()).length === 0);
    console.log(`# delete → no container in ${Date.now() - started} ms`);
    assert.equal((await containersOf('my-mcp')).length, 0);
    assert.ok(!logLines.join('\n').includes(registry.password), 'password never logged');
  });
});
