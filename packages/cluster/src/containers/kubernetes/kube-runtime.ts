import { AppsV1Api, CoreV1Api, KubeConfig, type V1ConfigMap, type V1Deployment } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import type { WorkloadView } from '../endpoints.js';
import type { ContainerRuntime, EnsureContext, LogLine, LogOptions, ObservedWorkload } from '../runtime.js';
import { CLUSTER_LABEL, CONFIG_LABEL, HASH_LABEL, SERVICE_LABEL, UID_LABEL, type Workload } from '../workload.js';
import { clusterIPService, deployment, envSecret, envSecretName, ownerConfigMap, ownerName, ownerRef, registrySecret, registrySecretName, workloadName } from './objects.js';

const IN_CLUSTER_NS = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const notFound = (err: unknown) => (err as { code?: number }).code === 404;

/**
 * Managed containers in Kubernetes (`--container-runtime kubernetes`): a Deployment and a ClusterIP Service per
 * workload, in the cluster's own namespace. The gateway reaches replicas through the ClusterIP Service; kube-proxy
 * spreads connections over the ready pods. NOT yet run against a live API server (docs/containers.md): the objects
 * are validated against the OpenAPI schemas and the exact API calls are tested against a recording server.
 */
export class KubernetesRuntime implements ContainerRuntime {
  readonly name = 'kubernetes' as const;
  readonly #core: CoreV1Api;
  readonly #apps: AppsV1Api;

  constructor(private readonly kc: KubeConfig, readonly namespace: string, readonly clusterId: string) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#apps = kc.makeApiClient(AppsV1Api);
  }

  /** In-cluster service account when running in a pod, else $KUBECONFIG / ~/.kube/config; namespace from either. */
  static fromEnvironment(clusterId: string): KubernetesRuntime {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    let namespace = process.env.OCTELIUM_K8S_NAMESPACE ?? kc.getContextObject(kc.getCurrentContext())?.namespace;
    try { namespace ??= readFileSync(IN_CLUSTER_NS, 'utf8').trim(); } catch { /* not in a pod */ }
    return new KubernetesRuntime(kc, namespace ?? 'default', clusterId);
  }

  describe(): string {
    return `API server ${this.kc.getCurrentCluster()?.server ?? '?'}, namespace ${this.namespace}`;
  }

  async #upsertOwner(w: Workload): Promise<V1ConfigMap> {
    const want = ownerConfigMap(w, this.namespace, this.clusterId);
    try {
      return await this.#core.readNamespacedConfigMap({ name: want.metadata!.name!, namespace: this.namespace });
    } catch (err) {
      if (!notFound(err)) throw err;
      return this.#core.createNamespacedConfigMap({ namespace: this.namespace, body: want });
    }
  }

  /** Create, or replace keeping the server's resourceVersion (a plain read-modify-write; conflicts retry on the next step). */
  async #upsert<T extends { metadata?: { name?: string; resourceVersion?: string } }>(
    body: T, read: () => Promise<T>, create: () => Promise<T>, replace: (b: T) => Promise<T>,
  ): Promise<T> {
    try {
      const current = await read();
      return await replace({ ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } });
    } catch (err) {
      if (!notFound(err)) throw err;
      return create();
    }
  }

  async ensure(w: Workload, ctx: EnsureContext): Promise<WorkloadView> {
    const ns = this.namespace;
    const owner = ownerRef(await this.#upsertOwner(w));
    const reg = registrySecret(w, ns, this.clusterId, owner, ctx.secret);
    if (reg) await this.#upsert(reg, () => this.#core.readNamespacedSecret({ name: registrySecretName(w), namespace: ns }), () => this.#core.createNamespacedSecret({ namespace: ns, body: reg }), (b) => this.#core.replaceNamespacedSecret({ name: registrySecretName(w), namespace: ns, body: b }));
    const env = envSecret(w, ns, this.clusterId, owner, ctx.secret);
    if (env) await this.#upsert(env, () => this.#core.readNamespacedSecret({ name: envSecretName(w), namespace: ns }), () => this.#core.createNamespacedSecret({ namespace: ns, body: env }), (b) => this.#core.replaceNamespacedSecret({ name: envSecretName(w), namespace: ns, body: b }));
    const name = workloadName(w);
    const dep = deployment(w, ns, this.clusterId, owner);
    const applied = await this.#upsert<V1Deployment>(dep, () => this.#apps.readNamespacedDeployment({ name, namespace: ns }), () => this.#apps.createNamespacedDeployment({ namespace: ns, body: dep }), (b) => this.#apps.replaceNamespacedDeployment({ name, namespace: ns, body: b }));
    const svc = clusterIPService(w, ns, this.clusterId, owner);
    try {
      await this.#core.readNamespacedService({ name, namespace: ns });
    } catch (err) {
      if (!notFound(err)) throw err;
      await this.#core.createNamespacedService({ namespace: ns, body: svc });
    }
    const st = applied.status ?? {};
    const ready = st.readyReplicas ?? 0;
    const failed = (st.conditions ?? []).find((c) => (c.type === 'ReplicaFailure' && c.status === 'True') || (c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded'));
    const endpoints = ready > 0 ? [{ id: `${ns}/${name}`, url: `http://${name}.${ns}.svc:${w.container.port}` }] : [];
    if (failed) return { state: 'Failed', replicas: w.replicas, ready, message: failed.message ?? failed.reason ?? failed.type, endpoints };
    const done = ready >= w.replicas && (st.updatedReplicas ?? 0) >= w.replicas;
    return { state: done ? 'Running' : 'Pending', replicas: w.replicas, ready, message: done ? '' : `${ready}/${w.replicas} pods ready`, endpoints };
  }

  async remove(serviceLabel: string, config?: string): Promise<void> {
    const ns = this.namespace;
    if (!config) {
      // Everything of the Service hangs off its owner ConfigMap: one delete, garbage collection does the rest.
      await this.#core.deleteNamespacedConfigMap({ name: ownerName(serviceLabel), namespace: ns, propagationPolicy: 'Foreground' }).catch((err) => { if (!notFound(err)) throw err; });
      return;
    }
    const name = workloadName({ serviceLabel, config });
    const ignore = (err: unknown) => { if (!notFound(err)) throw err; };
    await this.#apps.deleteNamespacedDeployment({ name, namespace: ns }).catch(ignore);
    await this.#core.deleteNamespacedService({ name, namespace: ns }).catch(ignore);
    await this.#core.deleteNamespacedSecret({ name: `${name}-regcred`, namespace: ns }).catch(ignore);
    await this.#core.deleteNamespacedSecret({ name: `${name}-env`, namespace: ns }).catch(ignore);
  }

  async list(): Promise<ObservedWorkload[]> {
    const deps = await this.#apps.listNamespacedDeployment({ namespace: this.namespace, labelSelector: `${CLUSTER_LABEL}=${this.clusterId}` });
    return deps.items.map((d) => {
      const l = d.metadata?.labels ?? {};
      return { serviceLabel: l[SERVICE_LABEL] ?? '', serviceUid: l[UID_LABEL] ?? '', config: l[CONFIG_LABEL] ?? '', hash: l[HASH_LABEL] ?? '', ids: [d.metadata?.name ?? ''] };
    });
  }

  /** The pods' current logs (no follow: streaming pod logs is left to kubectl for now). */
  async *logs(serviceLabel: string, opts: LogOptions): AsyncIterable<LogLine> {
    const pods = await this.#core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${CLUSTER_LABEL}=${this.clusterId},${SERVICE_LABEL}=${serviceLabel}` });
    for (const p of pods.items) {
      const text = await this.#core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: this.namespace, tailLines: opts.tail });
      for (const line of String(text).split('\n')) if (line) yield { replica: p.metadata!.name!, stream: 'stdout', text: line };
    }
  }

  async close(): Promise<void> {}
}
