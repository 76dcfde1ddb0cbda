/**
 * The Kubernetes runtime without an API server (none can run here; docs/containers.md says so): every generated object
 * is validated against the Kubernetes OpenAPI schemas (kubernetes-models), and the driver's exact API calls are
 * recorded by a small HTTP server that answers like the API server does (404 Status for a missing object, the object
 * back on create/replace), through the real @kubernetes/client-node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import type { Resource } from '@octelium-ts/shared';
import { workloadsOf } from '../src/containers/workload.js';
import { clusterIPService, deployment, envSecret, ownerConfigMap, ownerRef, registrySecret } from '../src/containers/kubernetes/objects.js';
import { KubernetesRuntime } from '../src/containers/kubernetes/kube-runtime.js';

const svc: Resource = {
  kind: 'Service', metadata: { name: 'my-mcp.prod', uid: '5b1c0d7e-0000-4000-8000-000000000001', resourceVersion: '7' },
  spec: {
    mode: 'HTTP', isPublic: true,
    config: { upstream: { container: {
      image: 'ghcr.io/org/my-mcp:1.2.3', port: 8080, args: ['--verbose'], command: ['/app/server'], replicas: 2,
      env: [{ name: 'LOG', value: 'debug' }, { name: 'API_KEY', fromSecret: 'api-key' }],
      credentials: { usernamePassword: { username: 'ghcr-username', password: { fromSecret: 'ghcr-token' } } },
      resourceLimit: { cpu: { millicores: 1000 }, memory: { megabytes: 2000 } },
    } } },
    dynamicConfig: { configs: [{ name: 'canary', upstream: { container: { image: 'ghcr.io/org/my-mcp:latest', port: 8080 } } }], rules: [] },
  },
} as unknown as Resource;
const secrets: Record<string, string> = { 'ghcr-token': 'tok-123', 'api-key': 'key-456' };
const secret = (n: string) => secrets[n];
const [main, canary] = workloadsOf(svc, () => '1');

test('every generated object is valid against the Kubernetes OpenAPI schemas', () => {
  const cm = { ...ownerConfigMap(main, 'octelium', 'c1'), metadata: { ...ownerConfigMap(main, 'octelium', 'c1').metadata, uid: 'u-1' } };
  const owner = ownerRef(cm);
  new ConfigMap(cm as never).validate();
  for (const w of [main, canary]) {
    const d = deployment(w, 'octelium', 'c1', owner);
    new Deployment(d as never).validate();
    new Service(clusterIPService(w, 'octelium', 'c1', owner) as never).validate();
  }
  const reg = registrySecret(main, 'octelium', 'c1', owner, secret)!;
  new Secret(reg as never).validate();
  new Secret(envSecret(main, 'octelium', 'c1', owner, secret)! as never).validate();
  // A broken object is caught by the same validation (the check is not vacuous).
  assert.throws(() => new Deployment({ ...deployment(main, 'octelium', 'c1', owner), spec: { replicas: 'two' } } as never).validate());

  const d = deployment(main, 'octelium', 'c1', owner);
  const c = d.spec!.template.spec!.containers[0];
  assert.equal(d.metadata!.name, 'upstream-svc-my-mcp-prod-default');
  assert.equal(d.spec!.replicas, 2);
  assert.deepEqual(c.resources!.limits, { cpu: '1000m', memory: '2000Mi' });
  assert.deepEqual(c.command, ['/app/server']);
  assert.deepEqual(c.args, ['--verbose']);
  assert.equal(c.imagePullPolicy, 'IfNotPresent');
  assert.deepEqual(c.readinessProbe!.tcpSocket, { port: 8080 });
  assert.deepEqual(d.spec!.template.spec!.imagePullSecrets, [{ name: 'upstream-svc-my-mcp-prod-default-regcred' }]);
  assert.deepEqual(c.env![1], { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'upstream-svc-my-mcp-prod-default-env', key: 'API_KEY' } } });
  assert.equal(d.metadata!.labels!['octelium.io/service'], 'my-mcp.prod');
  assert.deepEqual(d.metadata!.ownerReferences, [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'octelium-svc-my-mcp-prod', uid: 'u-1', controller: true, blockOwnerDeletion: true }]);
  assert.equal(deployment(canary, 'octelium', 'c1', owner).spec!.template.spec!.containers[0].imagePullPolicy, 'Always', 'latest is always pulled');
  const docker = JSON.parse(Buffer.from(reg.data!['.dockerconfigjson'], 'base64').toString());
  assert.deepEqual(docker, { auths: { 'ghcr.io': { auth: Buffer.from('ghcr-username:tok-123').toString('base64') } } });
  assert.equal(reg.type, 'kubernetes.io/dockerconfigjson');
});

/** Answers like the API server for the calls the driver makes, and records them. */
async function recordingApiServer(): Promise<{ server: Server; url: string; calls: string[]; bodies: Map<string, unknown> }> {
  const objects = new Map<string, Record<string, unknown>>();
  const calls: string[] = [];
  const bodies = new Map<string, unknown>();
  let uid = 0;
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const path = new URL(req.url!, 'http://x').pathname;
    calls.push(`${req.method} ${path}`);
    if (body) bodies.set(`${req.method} ${path}`, body);
    const send = (status: number, obj: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(obj));
    const notFound = () => send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `${path} not found` });
    if (req.method === 'GET') {
      if (path.endsWith('/deployments') || path.endsWith('/pods')) return send(200, { items: [...objects.entries()].filter(([k]) => k.startsWith(path + '/')).map(([, v]) => v) });
      return objects.has(path) ? send(200, objects.get(path)) : notFound();
    }
    if (req.method === 'POST') {
      const key = `${path}/${body.metadata.name}`;
      const obj = { ...body, metadata: { ...body.metadata, uid: `uid-${++uid}`, resourceVersion: '1' } };
      if (body.kind === 'Deployment') obj.status = { replicas: body.spec.replicas, readyReplicas: body.spec.replicas, updatedReplicas: body.spec.replicas };
      objects.set(key, obj);
      return send(201, obj);
    }
    if (req.method === 'PUT') {
      if (!objects.has(path)) return notFound();
      const obj = { ...body, metadata: { ...body.metadata, resourceVersion: String(Number(body.metadata.resourceVersion) + 1) }, status: (objects.get(path) as { status?: unknown }).status };
      objects.set(path, obj);
      return send(200, obj);
    }
    if (req.method === 'DELETE') {
      if (!objects.has(path)) return notFound();
      objects.delete(path);
      return send(200, { kind: 'Status', status: 'Success' });
    }
    send(405, {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, bodies };
}

test('the driver makes exactly these API calls: owner ConfigMap, Secrets, Deployment, ClusterIP Service; then deletes by owner', async () => {
  const api = await recordingApiServer();
  try {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'rec', server: api.url, skipTLSVerify: true }], users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'rec', cluster: 'rec', user: 'u', namespace: 'octelium' }], currentContext: 'rec',
    });
    const rt = new KubernetesRuntime(kc, 'octelium', 'c1');
    const ctx = { secret, publish: () => undefined, drain: async () => undefined, signal: new AbortController().signal };
    const view = await rt.ensure(main, ctx);
    const ns = '/api/v1/namespaces/octelium';
    const apps = '/apis/apps/v1/namespaces/octelium';
    assert.deepEqual(api.calls, [
      `GET ${ns}/configmaps/octelium-svc-my-mcp-prod`, `POST ${ns}/configmaps`,
      `GET ${ns}/secrets/upstream-svc-my-mcp-prod-default-regcred`, `POST ${ns}/secrets`,
      `GET ${ns}/secrets/upstream-svc-my-mcp-prod-default-env`, `POST ${ns}/secrets`,
      `GET ${apps}/deployments/upstream-svc-my-mcp-prod-default`, `POST ${apps}/deployments`,
      `GET ${ns}/services/upstream-svc-my-mcp-prod-default`, `POST ${ns}/services`,
    ]);
    assert.deepEqual(view, { state: 'Running', replicas: 2, ready: 2, message: '', endpoints: [{ id: 'octelium/upstream-svc-my-mcp-prod-default', url: 'http://upstream-svc-my-mcp-prod-default.octelium.svc:8080' }] });
    const posted = api.bodies.get(`POST ${apps}/deployments`) as { metadata: { ownerReferences: Array<{ uid: string }> } };
    assert.equal(posted.metadata.ownerReferences[0].uid, 'uid-1', 'owned by the ConfigMap the API server created');

    // A spec change: the same objects are replaced (resourceVersion carried), nothing created twice.
    api.calls.length = 0;
    await rt.ensure({ ...main, hash: 'changed', replicas: 3 }, ctx);
    assert.deepEqual(api.calls, [
      `GET ${ns}/configmaps/octelium-svc-my-mcp-prod`,
      `GET ${ns}/secrets/upstream-svc-my-mcp-prod-default-regcred`, `PUT ${ns}/secrets/upstream-svc-my-mcp-prod-default-regcred`,
      `GET ${ns}/secrets/upstream-svc-my-mcp-prod-default-env`, `PUT ${ns}/secrets/upstream-svc-my-mcp-prod-default-env`,
      `GET ${apps}/deployments/upstream-svc-my-mcp-prod-default`, `PUT ${apps}/deployments/upstream-svc-my-mcp-prod-default`,
      `GET ${ns}/services/upstream-svc-my-mcp-prod-default`,
    ]);
    assert.deepEqual((await rt.list()).map((o) => [o.serviceLabel, o.config, o.hash]), [['my-mcp.prod', 'default', 'changed']]);

    api.calls.length = 0;
    await rt.remove('my-mcp.prod');
    assert.deepEqual(api.calls, [`DELETE ${ns}/configmaps/octelium-svc-my-mcp-prod`]);
    assert.equal((api.bodies.get(`DELETE ${ns}/configmaps/octelium-svc-my-mcp-prod`) as { propagationPolicy?: string } | undefined)?.propagationPolicy ?? 'Foreground', 'Foreground');
    assert.ok(!JSON.stringify([...api.bodies.values()]).includes('tok-123'), 'the registry password travels only base64-encoded inside the dockerconfigjson');
  } finally {
    api.server.close();
  }
});
