import { randomBytes } from 'node:crypto';
import type { Sql } from '../store/sql.js';
import { LeaderLease, type LeaseHooks } from './leader-lease.js';
import { BoundedMap } from '@octelium-ts/shared';

/** A connected agent as the registry records it (from TunnelHub.agents()). */
export interface LocalAgent { id: string; user: string; services: string[]; serveAll?: boolean }

/** Another replica holding an agent that serves what a request needs. */
export interface Holder { replicaId: string; url: string }

export interface RegistryOptions {
  /** How often this replica renews its lease and records its agents. Default 1 s. */
  heartbeatMs?: number;
  /** A replica that has not renewed for this long is dead: its agents are ignored (and later removed). Default 5 s. */
  leaseMs?: number;
}

/**
 * Which replica holds which `octelium connect` agent, in the store (design.md §9): each replica renews a lease
 * (`replicas`) and records the agents connected to it (`tunnel_agents`). Level-triggered: every heartbeat compares
 * the hub's agents with what was recorded and writes the difference, so a missed event is healed one beat later
 * and an agent's row lives exactly as long as its replica's lease. A replica that dies (kill -9) stops renewing;
 * after `leaseMs` nobody forwards to it, and its agents, reconnected elsewhere, are recorded by their new replica.
 */
export class ReplicaRegistry {
  readonly id = randomBytes(8).toString('hex');
  readonly #recorded = new Map<string, string>();
  readonly #heartbeatMs: number;
  readonly #leaseMs: number;
  readonly #suspects = new Map<string, number>();
  /** Recent answers of `holders`: forwarding must not cost a store round trip per request. */
  readonly #cache = new BoundedMap<string, { until: number; holders: Holder[] }>(10_000);
  /** Leader leases this replica competes for; renewed on its heartbeat, given up when it closes. */
  readonly #leases: LeaderLease[] = [];
  #timer: NodeJS.Timeout | undefined;
  #beats = 0;
  #closed = false;

  constructor(private readonly sql: Sql, private readonly advertiseURL: () => string, private readonly localAgents: () => LocalAgent[], opts: RegistryOptions = {}) {
    this.#heartbeatMs = opts.heartbeatMs ?? 1000;
    this.#leaseMs = opts.leaseMs ?? 5000;
  }

  start(): void {
    this.#beat();
    this.#timer = setInterval(() => this.#beat(), this.#heartbeatMs);
    this.#timer.unref();
  }

  #beat(): void {
    const now = Date.now();
    try {
      this.sync(now);
    } catch {
      /* the store is down: the lease lapses unless it comes back in time, which is the truth */
    }
    for (const l of this.#leases) l.beat(now);
  }

  /**
   * Competes for the leader lease `name` (a job one replica of the cluster runs: the container reconciler), held by
   * this replica's id with its heartbeat and lease timing. Tried at once, then on every heartbeat.
   */
  lead(name: string, hooks: LeaseHooks): LeaderLease {
    const lease = new LeaderLease(this.sql, name, this.id, { heartbeatMs: this.#heartbeatMs, leaseMs: this.#leaseMs }, hooks);
    if (this.#closed) lease.release(); // too late to lead: never acquires
    this.#leases.push(lease);
    lease.beat();
    return lease;
  }

  /** Renews the lease and writes the difference between connected and recorded agents. */
  sync(now = Date.now()): void {
    this.sql.run('INSERT INTO replicas (id, advertise_url, started_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET advertise_url = excluded.advertise_url, expires_at = excluded.expires_at',
      [this.id, this.advertiseURL(), now, now + this.#leaseMs]);
    const live = new Map(this.localAgents().map((a) => [a.id, a]));
    for (const [id, a] of live) {
      const row = JSON.stringify([a.user, [...a.services].sort(), !!a.serveAll]);
      if (this.#recorded.get(id) === row) continue;
      this.sql.run('INSERT INTO tunnel_agents (agent_id, replica_id, user_name, services, serve_all) VALUES (?, ?, ?, ?, ?) ON CONFLICT(agent_id) DO UPDATE SET services = excluded.services, serve_all = excluded.serve_all',
        [id, this.id, a.user, JSON.stringify(a.services), a.serveAll ? 1 : 0]);
      this.#recorded.set(id, row);
    }
    for (const id of [...this.#recorded.keys()]) {
      if (live.has(id)) continue;
      this.sql.run('DELETE FROM tunnel_agents WHERE agent_id = ?', [id]);
      this.#recorded.delete(id);
    }
    // Now and then, remove what dead replicas left (anyone may; it is idempotent).
    if (this.#beats++ % 30 === 0) {
      const dead = now - 60_000;
      this.sql.run('DELETE FROM tunnel_agents WHERE replica_id IN (SELECT id FROM replicas WHERE expires_at < ?)', [dead]);
      this.sql.run('DELETE FROM replicas WHERE expires_at < ?', [dead]);
    }
  }

  /**
   * Live replicas other than this one whose agents of `user` serve `service`. Answers are kept for a heartbeat
   * (a miss for a tenth of one), which is as fresh as the registrations themselves; an unreachable holder is
   * dropped from them at once (`suspect`).
   */
  holders(user: string, service: string, now = Date.now()): Holder[] {
    const key = `${user}\n${service}`;
    const hit = this.#cache.get(key);
    if (hit && hit.until > now) return hit.holders.filter((h) => (this.#suspects.get(h.replicaId) ?? 0) <= now);
    const holders = this.#lookup(user, service, now);
    this.#cache.set(key, { until: now + (holders.length ? this.#heartbeatMs : this.#heartbeatMs / 10), holders });
    return holders;
  }

  #lookup(user: string, service: string, now: number): Holder[] {
    const rows = this.sql.all<{ replica_id: string; advertise_url: string; services: string; serve_all: number }>(
      'SELECT a.replica_id, r.advertise_url, a.services, a.serve_all FROM tunnel_agents a JOIN replicas r ON r.id = a.replica_id WHERE a.user_name = ? AND r.expires_at > ? AND a.replica_id <> ?',
      [user, now, this.id]);
    const out = new Map<string, Holder>();
    for (const r of rows) {
      if ((this.#suspects.get(r.replica_id) ?? 0) > now) continue;
      if (!Number(r.serve_all) && !(JSON.parse(r.services) as string[]).includes(service)) continue;
      out.set(r.replica_id, { replicaId: r.replica_id, url: r.advertise_url });
    }
    return [...out.values()];
  }

  /** A replica that could not be reached is skipped until its lease would have run out. */
  suspect(replicaId: string): void {
    this.#suspects.set(replicaId, Date.now() + this.#leaseMs);
  }

  /** A graceful stop gives up the lease at once, so nobody waits for it to lapse. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const l of this.#leases) l.release();
    try {
      this.sql.run('DELETE FROM tunnel_agents WHERE replica_id = ?', [this.id]);
      this.sql.run('DELETE FROM replicas WHERE id = ?', [this.id]);
    } catch {
      /* the store is down: the lease lapses */
    }
  }
}
