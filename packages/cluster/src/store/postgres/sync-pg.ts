import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { OcteliumError } from '@octelium-ts/shared';
import type { Sql } from '../sql.js';

/** Every writer of the cluster takes this transaction-scoped advisory lock (also the change-log trigger does). */
export const WRITE_LOCK = 0x6f63_7401;

export interface SyncPgOptions {
  /** A statement (lock waits included) may take this long; default 3 s. */
  statementTimeoutMs?: number;
  /** Connecting may take this long; default 2 s. */
  connectTimeoutMs?: number;
}

interface Reply { id: number; rows?: Record<string, unknown>[]; rowCount?: number; error?: { message: string; code?: string; connection: boolean } }

/** `postgres://user:secret@host:5432/db` → `host:5432/db`, for messages (never the password). */
export function describeURL(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'the configured PostgreSQL';
  }
}

/**
 * PostgreSQL behind the synchronous `Sql` interface: statements go to a worker thread holding one pg connection,
 * and this thread waits for the answer (Atomics.wait), the way better-sqlite3 waits for SQLite. That keeps one code
 * path for both engines and every existing write site unchanged. The cost is that this thread is blocked for one
 * round trip per statement (about 0.1–0.5 ms on a LAN); it is only ever used by control-plane writes and catch-up
 * reads, never on the gateway's per-request path, which reads in-memory mirrors.
 *
 * Bounded waits: a statement that takes longer than the timeout fails with 503 (UNREACHABLE), and for a second
 * after a connection failure every call fails at once, so a store that is down makes requests fail fast instead of
 * piling up behind connect timeouts. The worker reconnects by itself on the next call after that.
 */
export class PgSql implements Sql {
  readonly engine = 'postgres' as const;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #flag: Int32Array;
  readonly #timeoutMs: number;
  readonly #where: string;
  readonly #texts = new Map<string, string>();
  #seq = 0;
  #depth = 0;
  #txn = 0;
  #txnSeq = 0;
  #downUntil = 0;
  #lastError = '';
  #closed = false;

  constructor(readonly url: string, opts: SyncPgOptions = {}) {
    const statementTimeoutMs = opts.statementTimeoutMs ?? 3000;
    this.#timeoutMs = statementTimeoutMs + 2000;
    this.#where = describeURL(url);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const flag = new SharedArrayBuffer(4);
    this.#flag = new Int32Array(flag);
    this.#worker = new Worker(new URL('./bridge-worker.mjs', import.meta.url), {
      workerData: { url, statementTimeoutMs, connectTimeoutMs: opts.connectTimeoutMs ?? 2000, port: port2, flag },
      transferList: [port2],
    });
    this.#worker.unref();
    this.#port.unref();
  }

  /** True while the last statement could not reach PostgreSQL. */
  get down(): boolean {
    return this.#downUntil > 0;
  }

  get lastError(): string {
    return this.#lastError;
  }

  #text(sql: string): string {
    let t = this.#texts.get(sql);
    if (t === undefined) {
      let n = 0;
      t = sql.replace(/\?/g, () => `$${++n}`);
      this.#texts.set(sql, t);
    }
    return t;
  }

  #unreachable(detail: string): OcteliumError {
    return new OcteliumError('UNREACHABLE', `the cluster store (PostgreSQL at ${this.#where}) is unreachable: ${detail}; retry shortly`);
  }

  #call(sql: string, params: readonly unknown[], extra: { begin?: boolean; end?: boolean } = {}): Reply {
    if (this.#closed) throw this.#unreachable('the store is closed');
    if (Date.now() < this.#downUntil && !extra.end) throw this.#unreachable(this.#lastError);
    const id = ++this.#seq;
    this.#port.postMessage({ id, sql: this.#text(sql), params, txn: this.#txn, ...extra });
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const seen = Atomics.load(this.#flag, 0);
      let m = receiveMessageOnPort(this.#port);
      while (m && (m.message as Reply).id !== id) m = receiveMessageOnPort(this.#port); // late answers of timed-out calls
      if (m) return this.#settle(m.message as Reply);
      const left = deadline - Date.now();
      if (left <= 0) {
        this.#fail(`no answer within ${this.#timeoutMs} ms`);
        throw this.#unreachable(`no answer within ${this.#timeoutMs} ms`);
      }
      Atomics.wait(this.#flag, 0, seen, left);
    }
  }

  #fail(message: string): void {
    this.#lastError = message;
    this.#downUntil = Date.now() + 1000;
  }

  #settle(r: Reply): Reply {
    if (!r.error) {
      this.#downUntil = 0;
      return r;
    }
    if (r.error.connection) {
      this.#fail(r.error.message);
      throw this.#unreachable(r.error.message);
    }
    this.#downUntil = 0;
    throw Object.assign(new Error(`PostgreSQL: ${r.error.message}`), { code: r.error.code });
  }

  run(sql: string, params: readonly unknown[] = []): { changes: number } {
    return { changes: this.#call(sql, params).rowCount ?? 0 };
  }

  get<T>(sql: string, params: readonly unknown[] = []): T | undefined {
    return this.#call(sql, params).rows?.[0] as T | undefined;
  }

  all<T>(sql: string, params: readonly unknown[] = []): T[] {
    return (this.#call(sql, params).rows ?? []) as T[];
  }

  get inTransaction(): boolean {
    return this.#depth > 0;
  }

  transaction<T>(fn: () => T): T {
    const outer = this.#depth === 0;
    if (outer) {
      this.#txn = ++this.#txnSeq;
      try {
        this.#call('BEGIN', [], { begin: true });
        this.#call('SELECT pg_advisory_xact_lock(?)', [WRITE_LOCK]);
      } catch (err) {
        this.#abort();
        throw err;
      }
    } else {
      this.#call(`SAVEPOINT s${this.#depth}`, []);
    }
    this.#depth++;
    let out: T;
    try {
      out = fn();
    } catch (err) {
      this.#depth--;
      if (outer) this.#abort();
      else this.#quietly(`ROLLBACK TO SAVEPOINT s${this.#depth}`);
      throw err;
    }
    this.#depth--;
    if (!outer) {
      this.#call(`RELEASE SAVEPOINT s${this.#depth}`, []);
      return out;
    }
    try {
      this.#call('COMMIT', [], { end: true });
    } finally {
      this.#txn = 0;
    }
    return out;
  }

  #abort(): void {
    this.#quietly('ROLLBACK', true);
    this.#txn = 0;
  }

  /** Rollbacks after a failure: the failure is what the caller must hear about, not a second one. */
  #quietly(sql: string, end = false): void {
    try {
      this.#call(sql, [], { end });
    } catch {
      /* the connection is gone: PostgreSQL rolled the transaction back itself */
    }
  }

  nextVersion(): number {
    return Number(this.get<{ v: number }>("SELECT nextval('octelium_version') AS v")!.v);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker.terminate();
  }
}
