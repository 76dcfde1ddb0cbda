import type { V1ConfigMap, V1Deployment, V1OwnerReference, V1Secret, V1Service } from '@kubernetes/client-node';
import { CLUSTER_LABEL, CONFIG_LABEL, HASH_LABEL, registryOf, SERVICE_LABEL, tagOf, UID_LABEL, type Workload } from '../workload.js';
import { DEFAULT_CPU_MILLICORES, DEFAULT_MEMORY_MEGABYTES } from '../docker/create-options.js';
import type { SecretReader } from '../runtime.js';

/**
 * The Kubernetes objects for a workload (pure builders, validated against the Kubernetes OpenAPI schemas in
 * test/containers-kubernetes.test.ts). Shapes follow Octelium's nocturne (k8s_upstream.go): Deployment + ClusterIP
 * Service named upstream-svc-<svc>-<ns>-<config>, a dockerconfigjson Secret for the registry credentials, limits
 * from resourceLimit (defaults 1000m / 512Mi), everything owned by one ConfigMap per Octelium Service so deleting it
 * cascades.
 */

const dns = (s: string) => s.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');

export const ownerName = (serviceLabel: string) => dns(`octelium-svc-${serviceLabel.replace(/\./g, '-')}`);
export const workloadName = (w: Pick<Workload, 'serviceLabel' | 'config'>) => dns(`upstream-svc-${w.serviceLabel.replace(/\./g, '-')}-${w.config}`);
export const registrySecretName = (w: Workload) => `${workloadName(w)}-regcred`.slice(0, 253);
export const envSecretName = (w: Workload) => `${workloadName(w)}-env`.slice(0, 253);

/** Label values must be ≤ 63 characters of [A-Za-z0-9_.-]. */
export function labelsOf(w: Workload, clusterId: string): Record<string, string> {
  return { [CLUSTER_LABEL]: clusterId, [SERVICE_LABEL]: w.serviceLabel, [CONFIG_LABEL]: w.config };
}

export function ownerConfigMap(w: Workload, namespace: string, clusterId: string): V1ConfigMap {
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: ownerName(w.serviceLabel), namespace, labels: { [CLUSTER_LABEL]: clusterId, [SERVICE_LABEL]: w.serviceLabel, [UID_LABEL]: w.serviceUid } },
    data: { service: w.serviceLabel },
  };
}

export function ownerRef(owner: V1ConfigMap): V1OwnerReference {
  return { apiVersion: 'v1', kind: 'ConfigMap', name: owner.metadata!.name!, uid: owner.metadata!.uid!, controller: true, blockOwnerDeletion: true };
}

/** The registry credentials as a kubernetes.io/dockerconfigjson Secret (imagePullSecrets of the pods). */
export function registrySecret(w: Workload, namespace: string, clusterId: string, owner: V1OwnerReference, secret: SecretReader): V1Secret | undefined {
  const up = w.container.credentials?.usernamePassword;
  if (!up) return undefined;
  const auth = Buffer.from(`${up.username}:${secret(up.password.fromSecret)}`).toString('base64');
  const config = JSON.stringify({ auths: { [registryOf(w.container.image)]: { auth } } });
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson',
    metadata: { name: registrySecretName(w), namespace, labels: labelsOf(w, clusterId), ownerReferences: [owner] },
    data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
  };
}

/** `env` values that come from Octelium Secrets, in one Kubernetes Secret the pods read with secretKeyRef. */
export function envSecret(w: Workload, namespace: string, clusterId: string, owner: V1OwnerReference, secret: SecretReader): V1Secret | undefined {
  const fromSecret = (w.container.env ?? []).filter((e) => e.fromSecret);
  if (!fromSecret.length) return undefined;
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
    metadata: { name: envSecretName(w), namespace, labels: labelsOf(w, clusterId), ownerReferences: [owner] },
    data: Object.fromEntries(fromSecret.map((e) => [e.name, Buffer.from(secret(e.fromSecret!)).toString('base64')])),
  };
}

export function deployment(w: Workload, namespace: string, clusterId: string, owner: V1OwnerReference): V1Deployment {
  const c = w.container;
  const labels = labelsOf(w, clusterId);
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: workloadName(w), namespace, labels: { ...labels, [HASH_LABEL]: w.hash, [UID_LABEL]: w.serviceUid }, ownerReferences: [owner] },
    spec: {
      replicas: w.replicas,
      selector: { matchLabels: labels },
      // New pods ready before old ones go (design.md §8): surge one, never fewer ready than asked.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels, annotations: { [HASH_LABEL]: w.hash } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          ...(c.credentials ? { imagePullSecrets: [{ name: registrySecretName(w) }] } : {}),
          containers: [{
            name: 'upstream',
            image: c.image,
            imagePullPolicy: tagOf(c.image) === 'latest' ? 'Always' : 'IfNotPresent',
            ...(c.command ? { command: c.command } : {}),
            ...(c.args ? { args: c.args } : {}),
            ports: [{ containerPort: c.port, protocol: 'TCP' }],
            env: (c.env ?? []).map((e) => (e.fromSecret
              ? { name: e.name, valueFrom: { secretKeyRef: { name: envSecretName(w), key: e.name } } }
              : { name: e.name, value: e.value ?? '' })),
            resources: {
              limits: { cpu: `${c.resourceLimit?.cpu?.millicores ?? DEFAULT_CPU_MILLICORES}m`, memory: `${c.resourceLimit?.memory?.megabytes ?? DEFAULT_MEMORY_MEGABYTES}Mi` },
              requests: { cpu: '10m', memory: '16Mi' },
            },
            // The port accepts connections; the gateway's first request is the rest of the readiness story.
            readinessProbe: { tcpSocket: { port: c.port }, periodSeconds: 2, failureThreshold: 3 },
            securityContext: { allowPrivilegeEscalation: false, privileged: false },
          }],
        },
      },
    },
  };
}

export function clusterIPService(w: Workload, namespace: string, clusterId: string, owner: V1OwnerReference): V1Service {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: workloadName(w), namespace, labels: labelsOf(w, clusterId), ownerReferences: [owner] },
    spec: { type: 'ClusterIP', selector: labelsOf(w, clusterId), ports: [{ name: 'http', port: w.container.port, targetPort: w.container.port, protocol: 'TCP' }] },
  };
}
