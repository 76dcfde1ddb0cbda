/**
 * deploy/kubernetes/ (docs/scaling.md): every manifest validates against the Kubernetes OpenAPI schemas
 * (kubernetes-models), the pieces refer to each other correctly, and every flag the Deployment passes is one
 * `octelium-cluster start` accepts. No API server is available here: nothing in this test talks to a cluster.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { REPO_ROOT, runBin } from './helpers/testing.js';

const DIR = join(REPO_ROOT, 'deploy/kubernetes');
const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment, 'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap, 'v1/Namespace': Namespace, 'v1/Secret': Secret, 'v1/Service': Service,
};

interface Obj { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string>; stringData?: Record<string, string> }

const objects: Obj[] = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).flatMap((f) =>
  parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => d.toJSON() as Obj).filter(Boolean));
const find = (kind: string) => objects.find((o) => o.kind === kind)!;

test('every manifest validates against the Kubernetes OpenAPI schema of its kind', () => {
  assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Secret', 'Service']);
  for (const o of objects) {
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
    new Model(o as never).validate();
  }
  // The validator does catch a wrong type (so passing above means something).
  assert.throws(() => new Deployment({ ...find('Deployment'), spec: { ...find('Deployment').spec, replicas: 'three' } } as never).validate());
});

test('the pieces fit: selectors, probes, store from the Secret, advertise URL from the pod IP, a PDB that leaves replicas up', () => {
  const d = find('Deployment'), svc = find('Service'), pdb = find('PodDisruptionBudget');
  const labels = d.spec.template.metadata.labels;
  const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
  assert.ok(matches(d.spec.selector.matchLabels) && matches(svc.spec.selector) && matches(pdb.spec.selector.matchLabels));
  assert.ok(d.spec.replicas >= 2 && pdb.spec.minAvailable < d.spec.replicas, 'a drain never takes every replica');
  for (const o of objects) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, find('Namespace').metadata.name);
  const c = d.spec.template.spec.containers[0];
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  const env = Object.fromEntries(c.env.map((e: { name: string; valueFrom: unknown }) => [e.name, e.valueFrom]));
  assert.deepEqual(env.OCTELIUM_STORE, { secretKeyRef: { name: find('Secret').metadata.name, key: 'url' } });
  assert.ok(find('Secret').stringData!.url.startsWith('postgres://'));
  assert.deepEqual(env.POD_IP, { fieldRef: { fieldPath: 'status.podIP' } });
  assert.ok(c.args.includes('--advertise-url=http://$(POD_IP):8080'));
  assert.equal(env.OCTELIUM_DOMAIN.configMapKeyRef.name, find('ConfigMap').metadata.name);
  assert.match(find('ConfigMap').data!.OCTELIUM_DOMAIN, /:\d+$/, 'the domain carries the public port, so every replica issues tokens for one issuer');
  assert.equal(svc.spec.ports[0].targetPort, c.ports[0].name);
});

test('every flag the Deployment passes is one `octelium-cluster start` knows', async () => {
  const { stdout, code } = await runBin('octelium-cluster', ['start', '--help']);
  assert.equal(code, 0);
  const args: string[] = find('Deployment').spec.template.spec.containers[0].args;
  assert.equal(args[0], 'start');
  for (const a of args.slice(1)) {
    const flag = a.split('=')[0];
    assert.ok(stdout.includes(`${flag} `), `octelium-cluster start has no ${flag}`);
  }
});
