import type { LeaderLease, LeaseHooks } from '../replicas/leader-lease.js';
import type { Leadership } from './endpoint-feed.js';
import type { ContainerReconciler } from './reconciler.js';

/** The `leader_leases` row of the container reconciler. */
export const CONTAINERS_LEASE = 'containers';

/** Who hands out leader leases: the replica registry (replicas/registry.ts), renewing them on its heartbeat. */
export interface Elector {
  /** This process's replica id: the lease's holder. */
  readonly id: string;
  lead(name: string, hooks: LeaseHooks): LeaderLease;
}

/**
 * Runs the container reconciler in exactly one process of a cluster: replicas on PostgreSQL and --workers siblings
 * would otherwise all create, replace and remove the same containers. The process holding the `containers` lease
 * runs a reconciler; when it loses the lease (or closes), its reconciler stops and the next holder starts a fresh one,
 * which adopts the running containers (nothing is restarted by a change of leader). Every process keeps routing to
 * the containers through the endpoints the leader shares (endpoint-feed.ts).
 *
 * Octelium runs its controllers as Kubernetes Deployments with leader election on a coordination.k8s.io Lease; we
 * differ in where the lease lives (a row in the cluster's own store, renewed on the replica heartbeat) and in having
 * no separate controller process: the leader is one of the replicas that also serve traffic.
 */
export class ContainerLeader implements Leadership {
  #reconciler: ContainerReconciler | undefined;
  /** Set once this process competes for the lease (the first election may come before `lead` returns it). */
  #elector: Elector | undefined;
  #lease: LeaderLease | undefined;
  /** The previous term's reconciler stopping: a new term starts after it, never alongside it. */
  #stopping: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(
    private readonly newReconciler: () => ContainerReconciler,
    private readonly opts: { log: (msg: string) => void; onDeposed?: () => void },
  ) {}

  /** Competes for the lease; without an elector (one process on its own store) it simply leads. */
  start(elector?: Elector): void {
    if (!elector) return this.#elected();
    this.#elector = elector;
    this.#lease = elector.lead(CONTAINERS_LEASE, { onElected: () => this.#elected(), onDeposed: () => this.#deposed() });
  }

  get leading(): boolean {
    return this.#reconciler !== undefined;
  }

  confirm(): boolean {
    if (!this.leading) return false;
    return this.#elector ? this.#lease?.confirm() ?? false : true;
  }

  /** This term's reconciler, when this process leads. */
  get reconciler(): ContainerReconciler | undefined {
    return this.#reconciler;
  }

  /** Resolves once no reconcile is running here (tests, shutdown). */
  async idle(): Promise<void> {
    await this.#reconciler?.idle();
  }

  /** Stops reconciling here (containers keep running); the lease itself is given up by its elector's close. */
  async close(): Promise<void> {
    this.#closed = true;
    const r = this.#reconciler;
    this.#reconciler = undefined;
    await this.#stopping;
    await r?.close();
  }

  #elected(): void {
    if (this.#closed || this.#reconciler) return;
    const r = this.newReconciler();
    this.#reconciler = r;
    if (this.#elector) this.opts.log(`this process now leads the container reconciler (lease "${CONTAINERS_LEASE}", holder ${this.#elector.id})`);
    void this.#stopping.then(() => (this.#reconciler === r ? r.start() : undefined));
  }

  #deposed(): void {
    const r = this.#reconciler;
    this.#reconciler = undefined;
    if (!r) return;
    this.opts.log(`this process no longer leads the container reconciler (lease "${CONTAINERS_LEASE}" lost); another process takes over`);
    this.#stopping = this.#stopping.then(() => r.close());
    this.opts.onDeposed?.();
  }
}
