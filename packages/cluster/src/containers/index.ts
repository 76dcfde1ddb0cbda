export { ContainerEndpoints, type ReplicaEndpoint, type WorkloadView, type Lease, type ContainerState } from './endpoints.js';
export { ContainerReconciler, type ReconcilerOptions } from './reconciler.js';
export { selectRuntime, type RuntimeChoice, type SelectedRuntime } from './select.js';
// Type only: the Docker runtime (dockerode, ~130 ms to load) is imported by selectRuntime when it is chosen.
export type { DockerRuntime, DockerRuntimeOptions } from './docker/docker-runtime.js';
export { containerLogsRoute } from './logs-route.js';
export type { ContainerRuntime, LogLine } from './runtime.js';
export { aggregateStatus, scrub, type ContainerStatus } from './status.js';
export * from './workload.js';
