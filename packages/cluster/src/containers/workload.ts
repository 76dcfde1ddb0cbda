import { createHash } from 'node:crypto';
import { splitServiceName, type Resource, type ServiceSpec, type Upstream } from '@octelium-ts/shared';

/** Every managed container carries this label (design.md §8): `<svc>.<ns>`, the namespace always spelled out. */
export const SERVICE_LABEL = 'octelium.io/service';
/** Which config of the Service it serves: `default` (spec.config) or a dynamicConfig.configs[].name. */
export const CONFIG_LABEL = 'octelium.io/config';
/** Hash of everything that shapes the container; a different hash means "replace". */
export const HASH_LABEL = 'octelium.io/spec-hash';
/** Which cluster owns it (containers/cluster-id.ts): a runtime only ever lists, adopts and removes its own. */
export const CLUSTER_LABEL = 'octelium.io/cluster';
/** The Service's uid, so a Service deleted and re-created under the same name never adopts the old containers. */
export const UID_LABEL = 'octelium.io/service-uid';

/** The config name Octelium uses for `spec.config` (k8sutils.GetSvcK8sUpstreamHostname). */
export const DEFAULT_CONFIG = 'default';

export type ContainerSpec = NonNullable<Upstream['container']>;

/** What should run for one config of one Service: the unit the runtimes create, replace and remove. */
export interface Workload {
  /** `<svc>.<ns>/<config>`: unique per cluster. */
  key: string;
  /** The Service's stored name (`svc` in the default Namespace, `svc.ns` elsewhere). */
  service: string;
  /** `<svc>.<ns>`, the label value. */
  serviceLabel: string;
  serviceUid: string;
  config: string;
  container: ContainerSpec;
  replicas: number;
  /**
   * sha256 over the container spec and the resourceVersions of the Secrets it reads: a changed image, env, limit or
   * Secret replaces the containers. Secret values never enter the hash input, labels or status.
   */
  hash: string;
}

export const serviceLabelOf = (serviceName: string): string => {
  const { service, namespace } = splitServiceName(serviceName);
  return `${service}.${namespace}`;
};

export const workloadKey = (serviceLabel: string, config: string): string => `${serviceLabel}/${config}`;

/** Secrets a container spec reads (registry password, env fromSecret). */
export function secretsOf(c: ContainerSpec): string[] {
  const names = new Set<string>();
  if (c.credentials?.usernamePassword) names.add(c.credentials.usernamePassword.password.fromSecret);
  for (const e of c.env ?? []) if (e.fromSecret) names.add(e.fromSecret);
  return [...names].sort();
}

/** Containers of a Service: one workload for `spec.config.upstream.container`, one per dynamic config that sets one. */
export function workloadsOf(service: Resource, secretVersion: (name: string) => string | undefined): Workload[] {
  const spec = service.spec as ServiceSpec;
  const serviceLabel = serviceLabelOf(service.metadata.name);
  const out: Workload[] = [];
  const add = (config: string, container: ContainerSpec | undefined) => {
    if (!container) return;
    const secrets = secretsOf(container).map((n) => [n, secretVersion(n) ?? null]);
    const hash = createHash('sha256').update(JSON.stringify([container, secrets])).digest('hex').slice(0, 16);
    out.push({
      key: workloadKey(serviceLabel, config), service: service.metadata.name, serviceLabel,
      serviceUid: service.metadata.uid ?? '', config, container, replicas: container.replicas ?? 1, hash,
    });
  };
  add(DEFAULT_CONFIG, spec.config?.upstream?.container);
  for (const c of spec.dynamicConfig?.configs ?? []) add(c.name, c.upstream?.container);
  return out;
}

/** The registry host of an image reference, as Docker decides it (Octelium's setK8sUpstreamCredSecret does the same). */
export function registryOf(image: string): string {
  const first = image.split('/')[0];
  if (image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return first;
  return 'docker.io';
}

/** The tag of an image reference (`latest` when none is written and no digest pins it). */
export function tagOf(image: string): string | undefined {
  if (image.includes('@')) return undefined;
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  return colon < 0 ? 'latest' : image.slice(colon + 1);
}
