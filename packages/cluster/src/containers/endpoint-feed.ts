import type { ChangeFeed, FeedOp } from '../store/change-feed.js';
import type { ContainerEndpoints, WorkloadView } from './endpoints.js';

/** Whether this process leads the reconciler, and a fence read from the store (leadership.ts). */
export interface Leadership {
  readonly leading: boolean;
  /** True only while the store still names this process as the holder of the lease. */
  confirm(): boolean;
}

/**
 * Every process of a cluster routes requests to managed containers, but only the leader runs the reconciler that
 * learns where they are (leadership.ts). The leader writes each change of its endpoint table to `container_endpoints`;
 * the store's change log carries it to every other process (PostgreSQL replicas, --workers siblings), whose table
 * follows within the feed's latency — the rollout order (new replicas published before old ones are drained) included.
 * Writes are fenced by the lease: a process that lost it (stalled, partitioned) cannot overwrite its successor's table.
 *
 * The endpoints are the URLs the leader's runtime gave: Kubernetes ClusterIP names reach from any pod; Docker's
 * 127.0.0.1 ports only from the Docker host, so Docker-run containers are served by replicas on that host.
 */
export class EndpointFeed {
  /** What the store holds, by workload key, as JSON: unchanged views (every resync re-sets them) are not rewritten. */
  readonly #stored = new Map<string, string>();
  #failing = false;

  constructor(
    private readonly feed: ChangeFeed,
    private readonly endpoints: ContainerEndpoints,
    private readonly leadership: Leadership,
    private readonly log: (msg: string) => void,
  ) {
    this.follow();
    feed.register('container_endpoints', {
      applyRemote: (op, row) => this.#applyRemote(op, row),
      reload: () => this.follow(),
    });
    endpoints.onChange = (key, view) => this.#publish(key, view);
    // The leader's table is the truth; a follower that misses may just be behind the feed.
    endpoints.onMiss = () => !this.leadership.leading && this.feed.catchUpOnMiss();
  }

  /**
   * Makes the endpoint table what the store says (at start, and when this process stops leading: what the new leader
   * wrote while we still believed we led is not lost). The leader's own table is the truth: left alone.
   */
  follow(): void {
    if (this.leadership.leading) return;
    let rows: Array<{ workload: string; json: string }>;
    try {
      rows = this.feed.sql.all<{ workload: string; json: string }>('SELECT workload, json FROM container_endpoints');
    } catch (err) {
      this.log(`could not read the container endpoints from the store (${(err as Error).message}); the change feed brings them once it answers`);
      return;
    }
    this.#stored.clear();
    for (const r of rows) {
      this.#stored.set(r.workload, r.json);
      this.endpoints.set(r.workload, JSON.parse(r.json) as WorkloadView);
    }
    for (const key of this.endpoints.keys()) if (!this.#stored.has(key)) this.endpoints.delete(key);
  }

  #applyRemote(op: FeedOp, row: Record<string, unknown>): void {
    const key = String(row.workload);
    if (op === 'put') this.#stored.set(key, String(row.json));
    else this.#stored.delete(key);
    if (this.leadership.leading) return;
    if (op === 'put') this.endpoints.set(key, JSON.parse(String(row.json)) as WorkloadView);
    else this.endpoints.delete(key);
  }

  #publish(key: string, view: WorkloadView | undefined): void {
    if (!this.leadership.leading) return;
    const json = view && JSON.stringify(view);
    if (this.#stored.get(key) === json) return;
    try {
      const written = this.feed.transaction(() => {
        if (!this.leadership.confirm()) return false;
        if (json) this.feed.sql.run('INSERT INTO container_endpoints (workload, json) VALUES (?, ?) ON CONFLICT(workload) DO UPDATE SET json = excluded.json', [key, json]);
        else this.feed.sql.run('DELETE FROM container_endpoints WHERE workload = ?', [key]);
        return true;
      });
      if (!written) return;
      if (json) this.#stored.set(key, json);
      else this.#stored.delete(key);
      if (this.#failing) {
        this.#failing = false;
        this.log('container endpoints reach the store again');
        // Removals made while it was down are not set again by any resync: write them now.
        for (const k of [...this.#stored.keys()]) if (!this.endpoints.get(k)) this.#publish(k, undefined);
      }
    } catch (err) {
      // The store is down: the other processes keep the last endpoints they learnt; the reconciler's next resync
      // sets the view again, and this write is retried then.
      if (!this.#failing) this.log(`could not share the endpoints of ${key} with the other processes: ${(err as Error).message}`);
      this.#failing = true;
    }
  }
}
