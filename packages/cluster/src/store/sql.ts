import type { Statement } from 'better-sqlite3';
import type { DB } from './db.js';

/**
 * The statements the cluster runs against its store, whichever engine holds it: SQLite (better-sqlite3) or
 * PostgreSQL (pg behind a synchronous bridge, store/postgres/). Synchronous on purpose: the whole cluster reads
 * from in-memory mirrors and writes through short transactions, exactly as it did on SQLite alone, so no caller
 * had to become async to gain a second engine. SQL is written once with `?` placeholders in the dialect both
 * engines share (ON CONFLICT, RETURNING, no engine-specific functions); what differs lives in `dialect`.
 */
export interface Sql {
  readonly engine: 'sqlite' | 'postgres';
  run(sql: string, params?: readonly unknown[]): { changes: number };
  get<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): T | undefined;
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): T[];
  /**
   * Runs `fn` in one transaction that holds the store's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
   * transaction-scoped advisory lock every writer takes), so writers of every process are serialized and the
   * change log's versions follow commit order. Nested calls are savepoints.
   */
  transaction<T>(fn: () => T): T;
  readonly inTransaction: boolean;
  /** The next value of the cluster-wide resourceVersion counter (inside a transaction). */
  nextVersion(): number;
}

/** better-sqlite3, statements prepared once per SQL text. */
export class SqliteSql implements Sql {
  readonly engine = 'sqlite' as const;
  readonly #stmts = new Map<string, Statement<unknown[]>>();

  constructor(readonly db: DB) {}

  #stmt(sql: string) {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.db.prepare<unknown[]>(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  run(sql: string, params: readonly unknown[] = []): { changes: number } {
    return { changes: this.#stmt(sql).run(...(params as unknown[])).changes };
  }

  get<T>(sql: string, params: readonly unknown[] = []): T | undefined {
    return this.#stmt(sql).get(...(params as unknown[])) as T | undefined;
  }

  all<T>(sql: string, params: readonly unknown[] = []): T[] {
    return this.#stmt(sql).all(...(params as unknown[])) as T[];
  }

  transaction<T>(fn: () => T): T {
    // IMMEDIATE takes the write lock at BEGIN: another process (a --workers sibling) cannot commit between our
    // catch-up read and our writes. Nested calls become savepoints (better-sqlite3 does that by itself).
    return this.db.inTransaction ? this.db.transaction(fn)() : this.db.transaction(fn).immediate();
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  nextVersion(): number {
    const row = this.get<{ value: string }>("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'resourceVersion' RETURNING value");
    return Number(row!.value);
  }
}
