/**
 * Managed containers, bad input on a real Docker daemon and a real private registry (issue 14): wrong registry
 * password, unknown image, registry down, port never opens, container exits at once, memory limit below what the
 * image needs, the Docker daemon gone. Each gives a clear `status.container.message` and a 503 with a JSON-RPC error
 * body; failed attempts leave no container behind; the registry password appears in no status, log line or AccessLog.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { request } from 'undici';
import type { Resource } from '@octelium-ts/shared';
import { oauth2Token, service, startTestCluster, user, type TestCluster } from './helpers/testing.js';
import { mcpImage, removeClusterContainers, requireBinary, requireDocker, startRegistry, type Registry } from './helpers/docker.js';
import type { ContainerStatus } from '../src/containers/status.js';

let docker: Docker | undefined;
let registry: Registry;
let tc: TestCluster;
let token: string;
let good: string;
let remoteOnly: string;
const logLines: string[] = [];

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const statusOf = async (name: string) => ((await tc.api.get('Service', name)).status as { container?: ContainerStatus } | undefined)?.container;

function containerService(name: string, container: Record<string, unknown>): Resource {
  return service(name, { mode: 'HTTP', isPublic: true, config: { upstream: { container: { port: 8080, ...container } } } });
}

/** A JSON-RPC call through the gateway: the 503 must carry a JSON-RPC error with the request's id. */
async function call(svc: string): Promise<{ status: number; body: { jsonrpc?: string; id?: unknown; error?: { message: string } } }> {
  const r = await request(`${tc.cluster.url}/svc/${svc}/mcp`, {
    method: 'POST', body: JSON.stringify({ jsonrpc: '2.0', id: 77, method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 } } }),
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
  });
  return { status: r.statusCode, body: (await r.body.json()) as never };
}

const cases: Array<{ name: string; container: () => Record<string, unknown>; expect: RegExp }> = [
  { name: 'bad-password', container: () => ({ image: remoteOnly, credentials: { usernamePassword: { username: registry.username, password: { fromSecret: 'wrong-password' } } } }), expect: /refused the credentials of user "ci-user" \(check Secret "wrong-password"\)/ },
  { name: 'unknown-image', container: () => ({ image: `${registry.host}/octelium-test/does-not-exist:v9`, credentials: { usernamePassword: { username: registry.username, password: { fromSecret: 'registry-password' } } } }), expect: /pull of image .*does-not-exist:v9 failed: .*no such image or tag/ },
  { name: 'registry-down', container: () => ({ image: '127.0.0.1:9/octelium-test/x:v1' }), expect: /pull of image 127\.0\.0\.1:9\/octelium-test\/x:v1 failed: .*unreachable/ },
  { name: 'port-never-opens', container: () => ({ image: good, env: [{ name: 'NO_LISTEN', value: '1' }] }), expect: /port 8080 did not answer HTTP within 5 s/ },
  { name: 'exits-at-once', container: () => ({ image: good, env: [{ name: 'EXIT_AT_ONCE', value: '3' }] }), expect: /exited right after it started \(exit code 3\).*exiting at once with code 3/ },
  { name: 'memory-too-low', container: () => ({ image: good, env: [{ name: 'ALLOC_MB', value: '300' }], resourceLimit: { memory: { megabytes: 64 } } }), expect: /more memory than its limit \(64 MB\)/ },
];

describe('managed containers: bad input', { timeout: 180_000 }, () => {
  before(async (t) => {
    docker = await requireDocker(t as never);
    if (!docker || !requireBinary(t as never, '/usr/bin/docker-registry', 'docker-registry')) return;
    const image = await mcpImage(docker);
    registry = await startRegistry();
    const repo = `octelium-test/bad-${Math.random().toString(36).slice(2, 8)}`;
    good = await registry.push(docker, image, `${repo}:v1`);
    remoteOnly = await registry.push(docker, image, `${repo}:v2`);
    // `good` is also kept on this host: IfNotPresent means those Services use it without pulling (and without
    // credentials); `remoteOnly` exists only in the registry, so the wrong password is really tried.
    await docker.getImage(image).tag({ repo: good.slice(0, good.lastIndexOf(':')), tag: 'v1' });
    tc = await startTestCluster({ options: { containers: { runtime: 'docker', docker: { readyTimeoutMs: 5_000 }, reconciler: { resyncMs: 1_000, backoff: { initialMs: 1_000, maxMs: 30_000 }, log: (m) => logLines.push(m) } } } });
    await tc.api.apply({ resources: [
      user('bad-agent', { type: 'WORKLOAD' }),
      { kind: 'Secret', metadata: { name: 'wrong-password' }, spec: {}, data: { value: `${registry.password}-but-wrong` } } as Resource,
      { kind: 'Secret', metadata: { name: 'registry-password' }, spec: {}, data: { value: registry.password } } as Resource,
    ] } as never);
    token = await oauth2Token(tc.api, tc.cluster.url, 'bad-agent');
  });

  after(async () => {
    if (!docker) return;
    await tc?.close();
    if (tc) await removeClusterContainers(docker, tc.cluster.containers.clusterId);
    await registry?.stop();
    // Tags the runtime pulled from this run's registry (the image itself stays cached under its content-hash tag).
    for (const ref of [good, remoteOnly]) if (ref) await docker.getImage(ref).remove({ noprune: true }).catch(() => undefined);
  });

  test('each failure is a clear Failed status, a JSON-RPC 503, and leaves no container behind', async (t) => {
    if (!docker) return t.skip();
    await tc.api.apply({ resources: cases.map((c) => containerService(c.name, c.container())) } as never);
    const started = Date.now();
    const results = await Promise.all(cases.map(async (c) => {
      const st = await waitFor(`${c.name} Failed`, async () => {
        const s = await statusOf(c.name);
        return s?.state === 'Failed' && s;
      });
      return { c, st, at: Date.now() - started };
    }));
    for (const { c, st, at } of results) {
      console.log(`# ${c.name}: Failed after ${at} ms — ${st.message}`);
      assert.match(st.message, c.expect, c.name);
      assert.equal(st.ready, 0);
      const r = await call(c.name);
      assert.equal(r.status, 503, c.name);
      assert.equal(r.body.jsonrpc, '2.0');
      assert.equal(r.body.id, 77);
      assert.match(r.body.error!.message, /has no ready container \(Failed: /);
    }
    // Failed attempts are removed at once: give the reconciler no chance to be mid-attempt, then count.
    await tc.cluster.containers.leader.close();
    const left = await docker.listContainers({ all: true, filters: { label: [`octelium.io/cluster=${tc.cluster.containers.clusterId}`] } });
    assert.deepEqual(left.map((c) => `${c.Labels['octelium.io/service']} ${c.State}`), []);

    const everything = JSON.stringify(await tc.api.list('Service')) + logLines.join('\n') + JSON.stringify((await tc.api.accessLogs({ limit: 1000 })).items);
    assert.ok(!everything.includes(registry.password), 'the registry password is in no status, log line or AccessLog');
  });
});

describe('managed containers: the Docker daemon is gone', () => {
  test('a dead Docker socket is a Failed status naming it, and requests get a JSON-RPC 503', async () => {
    tc = await startTestCluster({ options: { containers: { runtime: 'docker', docker: { docker: new Docker({ socketPath: '/tmp/octelium-no-docker.sock' }) }, reconciler: { resyncMs: 500, log: () => undefined } } } });
    try {
      assert.match(tc.cluster.containers.reason, /docker at unix:\/\/\/tmp\/octelium-no-docker\.sock .* does not answer yet \(ENOENT\)/);
      await tc.api.apply({ resources: [user('bad-agent', { type: 'WORKLOAD' }), containerService('no-daemon', { image: 'octelium-test/whatever:v1' })] } as never);
      token = await oauth2Token(tc.api, tc.cluster.url, 'bad-agent');
      const st = await waitFor('no-daemon Failed', async () => {
        const s = await statusOf('no-daemon');
        return s?.state === 'Failed' && s;
      }, 10_000);
      assert.match(st.message, /the Docker daemon does not answer at unix:\/\/\/tmp\/octelium-no-docker\.sock \(ENOENT\)/);
      const r = await call('no-daemon');
      assert.equal(r.status, 503);
      assert.equal(r.body.id, 77);
    } finally {
      await tc.close();
    }
  });

  test('--container-runtime none: Pending with the reason, 503', async () => {
    tc = await startTestCluster({ options: { containers: { runtime: 'none' } } });
    try {
      assert.equal(tc.cluster.containers.runtime, 'none');
      await tc.api.apply({ resources: [user('bad-agent', { type: 'WORKLOAD' }), containerService('no-runtime', { image: 'octelium-test/whatever:v1' })] } as never);
      token = await oauth2Token(tc.api, tc.cluster.url, 'bad-agent');
      const st = await waitFor('no-runtime Pending', async () => {
        const s = await statusOf('no-runtime');
        return s?.state === 'Pending' && s;
      }, 10_000);
      assert.match(st.message, /--container-runtime none/);
      const r = await call('no-runtime');
      assert.equal(r.status, 503);
      assert.match(r.body.error!.message, /Pending: container runtime: none/);
    } finally {
      await tc.close();
    }
  });
});
