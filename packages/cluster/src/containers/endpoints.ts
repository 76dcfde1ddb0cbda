import { OcteliumError } from '@octelium-ts/shared';
import { workloadKey, serviceLabelOf } from './workload.js';

/** One ready replica as the gateway reaches it. */
export interface ReplicaEndpoint { id: string; url: string }

export type ContainerState = 'Pending' | 'Running' | 'Failed';

/** What `status.container` says about one workload (design.md §8), plus the endpoints that take traffic. */
export interface WorkloadView {
  state: ContainerState;
  replicas: number;
  ready: number;
  message: string;
  endpoints: ReplicaEndpoint[];
}

/** A picked replica; `release()` when the request is over (replacement waits for in-flight requests to finish). */
export interface Lease { endpoint: ReplicaEndpoint; release(): void }

/** Mcp-Session-Id → replica, so a stateful MCP server sees a session's requests on the replica that created it. */
const MAX_AFFINITY = 10_000;

/**
 * The gateway's view of managed containers: ready replicas per workload, round-robin among them, in-flight counts for
 * draining. Written by the reconciler (in the leading process; the others follow it through the store), read on every
 * request (map lookups only).
 */
export class ContainerEndpoints {
  readonly #views = new Map<string, WorkloadView & { next: number }>();
  readonly #inflight = new Map<string, number>();
  readonly #drained = new Map<string, Array<() => void>>();
  readonly #affinity = new Map<string, string>();
  /** Why there are no endpoints at all (no runtime); shown in 503s. */
  unavailableReason?: string;
  /** Told of every change, after it is made (the leader shares its table with the other processes: endpoint-feed.ts). */
  onChange?: (key: string, view: WorkloadView | undefined) => void;
  /**
   * A request found no ready replica: a follower may not have applied the leader's latest commit yet (a Service whose
   * status already says Running, read through another process). True when it caught up, so the lookup is worth
   * repeating; rate-limited by the change feed, so a burst of 503s does not become a burst of store reads.
   */
  onMiss?: () => boolean;

  set(key: string, view: WorkloadView): void {
    const prev = this.#views.get(key);
    this.#views.set(key, { ...view, next: prev?.next ?? 0 });
    this.onChange?.(key, view);
  }

  delete(key: string): void {
    if (this.#views.delete(key)) this.onChange?.(key, undefined);
  }

  get(key: string): WorkloadView | undefined {
    return this.#views.get(key);
  }

  keys(): string[] {
    return [...this.#views.keys()];
  }

  /**
   * A ready replica of `service`'s `config`, or a 503 saying why there is none. With `sessionId` (Mcp-Session-Id) the
   * replica that answered the session's initialize is preferred while it is still ready.
   */
  acquire(service: string, config: string, sessionId?: string): Lease {
    const key = workloadKey(serviceLabelOf(service), config);
    let view = this.#views.get(key);
    if ((!view || view.endpoints.length === 0) && this.onMiss?.()) view = this.#views.get(key);
    if (!view || view.endpoints.length === 0) {
      const why = view ? `${view.state}: ${view.message || 'no replica is ready yet'}` : this.unavailableReason ?? 'its containers are not scheduled yet';
      throw new OcteliumError('UPSTREAM_NOT_CONNECTED', `Service "${service}" has no ready container (${why})`);
    }
    const pinned = sessionId ? this.#affinity.get(sessionId) : undefined;
    const endpoint = (pinned && view.endpoints.find((e) => e.id === pinned)) || view.endpoints[view.next++ % view.endpoints.length];
    this.#inflight.set(endpoint.id, (this.#inflight.get(endpoint.id) ?? 0) + 1);
    let released = false;
    return {
      endpoint,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#inflight.get(endpoint.id) ?? 1) - 1;
        if (n > 0) return void this.#inflight.set(endpoint.id, n);
        this.#inflight.delete(endpoint.id);
        for (const r of this.#drained.get(endpoint.id) ?? []) r();
        this.#drained.delete(endpoint.id);
      },
    };
  }

  /** Remembers which replica owns an MCP session (bounded; the oldest binding goes first). */
  bindSession(sessionId: string, replicaId: string): void {
    this.#affinity.delete(sessionId);
    this.#affinity.set(sessionId, replicaId);
    if (this.#affinity.size > MAX_AFFINITY) this.#affinity.delete(this.#affinity.keys().next().value!);
  }

  inflight(replicaId: string): number {
    return this.#inflight.get(replicaId) ?? 0;
  }

  /** Resolves when no request is in flight on any of `ids` any more, or after `timeoutMs`. */
  async drain(ids: string[], timeoutMs: number): Promise<void> {
    const busy = ids.filter((id) => this.inflight(id) > 0);
    if (!busy.length) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(busy.map((id) => new Promise<void>((r) => {
        const list = this.#drained.get(id) ?? [];
        list.push(r);
        this.#drained.set(id, list);
      }))),
      new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); timer.unref(); }),
    ]);
    clearTimeout(timer);
  }
}
