import type { Sql } from '../store/sql.js';

export interface LeaseTiming {
  /** How often the lease is renewed (the replica heartbeat). */
  heartbeatMs: number;
  /** How long a renewal holds; a holder that stops renewing (kill -9) is replaced this long after its last one. */
  leaseMs: number;
}

export interface LeaseHooks {
  /** This process now holds the lease: start the job. */
  onElected(): void;
  /** It lost the lease (another took it, or the store did not answer for too long): stop the job now. */
  onDeposed(): void;
}

/**
 * One row of `leader_leases` per cluster-wide job that exactly one process may run at a time (the container
 * reconciler). Level-triggered like the replica lease it rides on (registry.ts): every heartbeat either renews it
 * (we hold it), takes it over (nobody does, or the holder's expiry has passed), or finds it held by someone else.
 *
 * The holder believes it leads only until one heartbeat before its lease runs out, so when renewals fail (store down,
 * process stalled) it has stopped before anyone else can take over — the renewDeadline < leaseDuration rule of
 * client-go's leader election, which Octelium's controllers use through Kubernetes. Unlike there, the expiry is
 * compared with each replica's own clock (as the replica leases are): clocks must agree to well within a heartbeat.
 */
export class LeaderLease {
  #held = false;
  /** When this process stops believing it leads, unless a renewal succeeds before. */
  #validUntil = 0;
  #released = false;

  constructor(
    private readonly sql: Sql,
    readonly name: string,
    /** The replica id (registry.ts) of this process. */
    readonly holder: string,
    private readonly timing: LeaseTiming,
    private readonly hooks: LeaseHooks,
  ) {}

  get held(): boolean {
    return this.#held;
  }

  /** One heartbeat: acquire or renew in one statement, then tell the hooks when leadership changed. Never throws. */
  beat(now = Date.now()): void {
    if (this.#released) return;
    let holds: boolean;
    try {
      holds = this.sql.run(
        'INSERT INTO leader_leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at < ?',
        [this.name, this.holder, now + this.timing.leaseMs, now]).changes > 0;
      if (holds) this.#validUntil = now + this.timing.leaseMs - this.timing.heartbeatMs;
    } catch {
      // The store does not answer: keep leading only while nobody else could have taken over.
      holds = this.#held && now < this.#validUntil;
    }
    this.#set(holds);
  }

  /**
   * Whether the store still names this process as the holder, read now: a fence for writes only the leader may
   * make (call it inside the transaction that makes them).
   */
  confirm(now = Date.now()): boolean {
    if (!this.#held || now >= this.#validUntil) return false;
    return !!this.sql.get('SELECT 1 AS ok FROM leader_leases WHERE name = ? AND holder = ? AND expires_at > ?', [this.name, this.holder, now]);
  }

  /** A clean stop gives the lease up at once, so another process takes over on its next heartbeat. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const held = this.#held;
    this.#held = false;
    if (!held) return;
    try {
      this.sql.run('DELETE FROM leader_leases WHERE name = ? AND holder = ?', [this.name, this.holder]);
    } catch {
      /* the store is down: the lease lapses */
    }
  }

  #set(holds: boolean): void {
    if (holds === this.#held) return;
    this.#held = holds;
    if (holds) this.hooks.onElected();
    else this.hooks.onDeposed();
  }
}
