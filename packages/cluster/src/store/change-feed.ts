import type { DB } from './db.js';
import { SqliteSql, type Sql } from './sql.js';

export type FeedOp = 'put' | 'delete';

/** An in-memory mirror of one table, kept current from the change log. */
export interface FeedTable {
  /** A row another process (a --workers sibling, another replica) committed. Must be idempotent. */
  applyRemote(op: FeedOp, row: Record<string, unknown>): void;
  /** The log was pruned past what this process applied: rebuild the mirror from the table itself. */
  reload(): void;
}

/** Where the store says "someone else may have committed": SQLite's data_version, PostgreSQL's LISTEN. */
export interface CommitSignal {
  watchCommits(changed: () => void): () => void;
}

/** How long committed changes stay in the log; a process that falls further behind reloads whole tables. */
const RETENTION_S = 600;
const PAGE = 1000;

/**
 * The change log (`changes`, filled by triggers on every mirrored table) read forward by version. Each process
 * applies what the others committed, in commit order, to its mirrors; its own writes are in its mirrors already
 * and are skipped, because every write runs in `transaction()`, which catches up under the write lock first and
 * then moves past its own entries.
 */
export class ChangeFeed {
  readonly #tables = new Map<string, FeedTable>();
  #applied: number;
  #stop: (() => void) | undefined;
  #scheduled = false;
  #pruneTimer: NodeJS.Timeout | undefined;
  #failing = false;
  #lastMissCatchUp = 0;
  /** Called when catching up fails (the store is down) and when it works again. */
  onHealth?: (ok: boolean, err?: unknown) => void;

  constructor(readonly sql: Sql) {
    this.#applied = this.#maxVersion();
  }

  get appliedVersion(): number {
    return this.#applied;
  }

  register(table: string, mirror: FeedTable): void {
    this.#tables.set(table, mirror);
  }

  /** Follows other processes' commits from now on (and prunes the log now and then). */
  start(signal: CommitSignal): void {
    this.#stop = signal.watchCommits(() => this.#schedule());
    this.#pruneTimer = setInterval(() => this.#tryPrune(), 60_000);
    this.#pruneTimer.unref();
  }

  stop(): void {
    this.#stop?.();
    this.#stop = undefined;
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      try {
        this.catchUp();
        if (this.#failing) this.onHealth?.(true);
        this.#failing = false;
      } catch (err) {
        if (!this.#failing) this.onHealth?.(false, err);
        this.#failing = true;
      }
    });
  }

  /** Applies, synchronously and in order, everything committed since the last call. */
  catchUp(): void {
    const pruned = Number(this.sql.get<{ value: string }>("SELECT value FROM meta WHERE key = 'changes.prunedUpto'")?.value ?? 0);
    if (pruned > this.#applied) {
      const upto = this.#maxVersion();
      for (const t of this.#tables.values()) t.reload();
      this.#applied = upto;
      return;
    }
    for (;;) {
      const rows = this.sql.all<{ version: number; tbl: string; op: FeedOp; json: string }>(
        'SELECT version, tbl, op, json FROM changes WHERE version > ? ORDER BY version LIMIT ?', [this.#applied, PAGE]);
      for (const r of rows) {
        this.#tables.get(r.tbl)?.applyRemote(r.op, JSON.parse(r.json) as Record<string, unknown>);
        this.#applied = Number(r.version);
      }
      if (rows.length < PAGE) return;
    }
  }

  /**
   * A mirror lookup missed: what was asked for may have been committed by another process a moment ago (a token
   * issued by a sibling, not yet followed). Catches up now, at most every 50 ms, so made-up tokens cannot turn into a
   * store query per request; true when it caught up (look again).
   */
  catchUpOnMiss(): boolean {
    const now = Date.now();
    if (now - this.#lastMissCatchUp < 50) return false;
    this.#lastMissCatchUp = now;
    try {
      this.catchUp();
      return true;
    } catch {
      return false; // the store is down: the mirror is all there is
    }
  }

  /**
   * A write transaction holding the store's write lock: other processes' commits are applied first (so `fn` sees
   * the store as it is, and a bootstrap or an optimistic check never acts on a stale mirror), and the entries `fn`
   * itself adds to the log are skipped afterwards (they are in the mirrors already).
   */
  transaction<T>(fn: () => T): T {
    if (this.sql.inTransaction) return this.sql.transaction(fn);
    let upto = 0;
    const out = this.sql.transaction(() => {
      this.catchUp();
      const result = fn();
      upto = this.#maxVersion();
      return result;
    });
    this.#applied = Math.max(this.#applied, upto);
    return out;
  }

  #maxVersion(): number {
    return Number(this.sql.get<{ v: number | null }>('SELECT MAX(version) AS v FROM changes')?.v ?? 0);
  }

  #tryPrune(): void {
    try {
      this.prune();
    } catch {
      /* the store is down; the next round prunes */
    }
  }

  /** Drops log entries older than the retention; processes behind them reload (see catchUp). */
  prune(olderThanS = RETENTION_S): void {
    const cutoff = Math.floor(Date.now() / 1000) - olderThanS;
    this.sql.transaction(() => {
      const upto = Number(this.sql.get<{ v: number | null }>('SELECT MAX(version) AS v FROM changes WHERE at < ?', [cutoff])?.v ?? 0);
      if (!upto) return;
      this.sql.run('DELETE FROM changes WHERE version <= ?', [upto]);
      this.sql.run("INSERT INTO meta (key, value) VALUES ('changes.prunedUpto', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [String(upto)]);
    });
  }
}

/** A better-sqlite3 handle (one process, tests) or the change feed of an opened store (store/open-store.ts). */
export type StoreSource = DB | ChangeFeed;

/** The feed of a store; a bare SQLite handle gets its own (mirrors built on one handle should share one feed). */
export function feedOf(source: StoreSource): ChangeFeed {
  return source instanceof ChangeFeed ? source : new ChangeFeed(new SqliteSql(source));
}
