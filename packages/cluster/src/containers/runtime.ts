import type { ReplicaEndpoint, WorkloadView } from './endpoints.js';
import type { Workload } from './workload.js';

/** Secret values by name, read at the moment they are needed (never stored by a runtime). */
export type SecretReader = (name: string) => string;

/** What `ensure` may use besides the workload: Secrets, and a way to publish progress to the gateway. */
export interface EnsureContext {
  secret: SecretReader;
  /**
   * Publishes the replicas that take traffic now. A replacement calls it once the new replicas are ready and before
   * it stops the old ones, then `drain`s the old ones.
   */
  publish(view: WorkloadView): void;
  /** Waits (bounded) for requests in flight on these replicas to finish. */
  drain(replicaIds: string[]): Promise<void>;
  signal: AbortSignal;
}

/** What runs, grouped as the runtime found it (by label), for adoption and orphan removal on start. */
export interface ObservedWorkload {
  serviceLabel: string;
  serviceUid: string;
  config: string;
  hash: string;
  /** Container (Docker) or Deployment (Kubernetes) ids. */
  ids: string[];
}

export interface LogLine { replica: string; stream: 'stdout' | 'stderr'; text: string }

export interface LogOptions { follow: boolean; tail?: number; signal: AbortSignal }

/**
 * A container runtime: Docker on one machine, Kubernetes in a cluster. Every method is one idempotent step toward the
 * desired state (style.md §11): the reconciler may call them again at any time.
 */
export interface ContainerRuntime {
  readonly name: 'docker' | 'kubernetes';
  /** Brings the workload to its spec (create, replace, scale, heal) and reports its state; throws when it cannot. */
  ensure(w: Workload, ctx: EnsureContext): Promise<WorkloadView>;
  /** Removes every container of the Service (`<svc>.<ns>`), or only of one config. */
  remove(serviceLabel: string, config?: string): Promise<void>;
  /** Everything carrying the octelium.io/service label. */
  list(): Promise<ObservedWorkload[]>;
  /** stdout/stderr of the Service's containers. */
  logs(serviceLabel: string, opts: LogOptions): AsyncIterable<LogLine>;
  /** Calls `onChange(serviceLabel)` when one of our containers changes on its own (died, removed, restarted). */
  watch?(onChange: (serviceLabel: string) => void): () => void;
  close(): Promise<void>;
}

export type { ReplicaEndpoint, WorkloadView };
