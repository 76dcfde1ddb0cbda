import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { matchesAccessLog, type AccessLog, type AccessLogFilter } from '@octelium-ts/shared';
import type { GatewayContext } from '../gateway/context.js';
import type { DB } from '../store/db.js';
import { SqliteSql, type Sql } from '../store/sql.js';
import { serializeLog } from './serialize.js';

const FLUSH_MS = 50;
const QUERY_PAGE = 500;
/** How soon a batch the writer could not commit (a full disk) is tried again. */
const RETRY_MS = 1000;

export type Row = [id: string, createdAt: string, service: string | null, user: string | null, status: string, json: string];

/** Row columns by index (the writer thread inserts them in this order). */
const ROW_JSON = 5;

function toRow(l: AccessLog): Row {
  const c = l.entry.common;
  return [l.metadata.id, l.metadata.createdAt, c.serviceRef?.name ?? null, c.userRef?.name ?? null, c.status, serializeLog(l)];
}

/** Where batches go on a store that is not a SQLite file: PostgreSQL, asynchronously (store/postgres/access-log-sink.ts). */
export interface AccessLogSink {
  /** Inserts the rows in one transaction, keeping at most `maxRows` (retention); rejects when nothing was written. */
  write(rows: Row[], maxRows: number): Promise<void>;
}

/** A shared store's AccessLog table: `sql` to read it, `sink` to write batches without blocking the gateway. */
export interface SharedAccessLogTable { sql: Sql; sink: AccessLogSink }

/**
 * AccessLogs: kept in SQLite (bounded to `maxRows`, oldest dropped) and pushed live to followers.
 * On the request path a log is only queued; batches go to a writer thread with its own SQLite connection
 * (WAL lets it write while this thread reads), so inserts and checkpoints never stall the gateway. Logs
 * handed to the writer stay in `#pending` until it confirms the commit, so `query` always sees every
 * recorded log. An in-memory database (tests) has no file to share, so there the writes stay in-thread.
 *
 * What waits (queued, pending) is the log's row — its JSON already made by the redactor — not the log's object
 * graph: a log outlives a few young-generation collections while it waits, and ~40 objects per request promoted
 * to the old generation made the long GC pauses that showed in the gateway's tail latency.
 */
export class AccessLogStore {
  readonly #sql: Sql;
  readonly #sink: AccessLogSink | undefined;
  readonly #feed = new EventEmitter();
  #queue: Row[] = [];
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  /** Handed to the writer, not yet confirmed committed: seq → row. */
  readonly #pending = new Map<number, Row>();
  readonly #worker: Worker | undefined;
  #failing = false;
  #closing = false;
  #writeFailures = 0;
  #dropped = 0;

  constructor(source: DB | SharedAccessLogTable, private readonly maxRows = 50_000) {
    this.#feed.setMaxListeners(0);
    if ('sink' in source) {
      this.#sql = source.sql;
      this.#sink = source.sink;
      return;
    }
    const db = source;
    this.#sql = new SqliteSql(db);
    if (!db.memory) {
      this.#worker = new Worker(new URL('./writer-worker.mjs', import.meta.url), { workerData: { file: db.name, maxRows } });
      this.#worker.on('message', (m: { type: string; from?: number; upto?: number; code?: string; message?: string }) => {
        if (m.type === 'failed') return this.#writeFailed(m as Required<typeof m>);
        if (m.type === 'committed') this.#committed(m.upto!);
      });
      this.#worker.on('error', (err) => console.error('access log writer failed:', err));
      this.#worker.unref();
    }
  }

  #committed(upto: number): void {
    for (const seq of this.#pending.keys()) {
      if (seq > upto) break;
      this.#pending.delete(seq);
    }
    if (this.#failing) console.error(`access log writer: writing again (${this.#writeFailures} batches failed so far, ${this.#dropped} AccessLogs dropped)`);
    this.#failing = false;
  }

  /** Batches the writer thread could not commit so far (each is retried), e.g. while the disk was full. */
  get writeFailures(): number {
    return this.#writeFailures;
  }

  /** AccessLogs given up on: more than `maxRows` waited for a failing writer, or the cluster stopped first. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * The writer could not commit seqs (from, upto]: they go back to the head of the queue (still visible to `query`,
   * never lost while the process lives) and are tried again in RETRY_MS. At most `maxRows` wait; the oldest go first.
   */
  #writeFailed(m: { from: number; upto: number; code: string; message: string }): void {
    this.#writeFailures++;
    if (!this.#failing) console.error(`access log writer: cannot write AccessLogs (${m.code}: ${m.message}); keeping them in memory, retrying every ${RETRY_MS} ms`);
    this.#failing = true;
    const back: Row[] = [];
    for (const [seq, row] of this.#pending) {
      if (seq > m.upto) break;
      if (seq > m.from) {
        back.push(row);
        this.#pending.delete(seq);
      }
    }
    if (this.#closing) {
      this.#dropped += back.length;
      console.error(`access log writer: ${back.length} AccessLogs could not be written before shutdown`);
      return;
    }
    this.#queue = [...back, ...this.#queue];
    const over = this.#queue.length - this.maxRows;
    if (over > 0) {
      this.#queue.splice(0, over);
      this.#dropped += over;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.flush(), RETRY_MS);
  }

  /**
   * Stores and publishes one AccessLog; returns it as stored (after redaction, when a redactor is set). `request`
   * is the gateway request it describes: its credential headers and Service config tell the redactor what to remove.
   */
  record(log: AccessLog, request?: GatewayContext): AccessLog {
    const stored = this.redact ? this.redact(log, request) : log;
    this.#queue.push(toRow(stored));
    this.#feed.emit('log', stored);
    this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    return stored;
  }

  /** Removes configured fields before anything is stored, streamed or exported (set by the visibility subsystem). */
  redact?: (log: AccessLog, request?: GatewayContext) => AccessLog;

  /** Hands every queued log to the writer (or writes it, in-thread). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#queue.length) return;
    const batch = this.#queue;
    this.#queue = [];
    if (this.#worker || this.#sink) {
      const from = this.#seq;
      for (const row of batch) this.#pending.set(++this.#seq, row);
      const upto = this.#seq;
      const rows = batch;
      if (this.#worker) return this.#worker.postMessage({ type: 'batch', rows, from, upto });
      const write = this.#sink!.write(rows, this.maxRows).then(
        () => this.#committed(upto),
        (err: { code?: string; message?: string }) => this.#writeFailed({ from, upto, code: err?.code ?? 'ERROR', message: err?.message ?? String(err) }),
      );
      this.#sinkWrites.add(write);
      void write.finally(() => this.#sinkWrites.delete(write));
      return;
    }
    this.#sql.transaction(() => {
      for (const row of batch) this.#sql.run('INSERT INTO access_logs (id, created_at, service, user_name, status, json) VALUES (?, ?, ?, ?, ?, ?)', row);
      this.#sql.run('DELETE FROM access_logs WHERE seq <= (SELECT MAX(seq) FROM access_logs) - ?', [this.maxRows]);
    });
  }
  readonly #sinkWrites = new Set<Promise<void>>();

  /** Newest `limit` matching logs, oldest first. */
  query(filter: AccessLogFilter, limit = 100): AccessLog[] {
    this.flush();
    const out: AccessLog[] = [];
    const seen = new Set<string>();
    const take = (log: AccessLog) => {
      if (seen.has(log.metadata.id)) return; // committed while we were reading: already counted
      seen.add(log.metadata.id);
      if (matchesAccessLog(log, filter)) out.push(log);
    };
    for (const row of [...this.#pending.values()].reverse()) {
      take(JSON.parse(row[ROW_JSON]) as AccessLog);
      if (out.length >= limit) return out.reverse();
    }
    // Newest first, a page at a time: a selective filter may have to look far back, a plain tail never does.
    for (let before = Number.MAX_SAFE_INTEGER; ;) {
      const rows = this.#sql.all<{ seq: number; json: string }>('SELECT seq, json FROM access_logs WHERE seq < ? ORDER BY seq DESC LIMIT ?', [before, QUERY_PAGE]);
      for (const row of rows) {
        take(JSON.parse(row.json) as AccessLog);
        if (out.length >= limit) return out.reverse();
      }
      if (rows.length < QUERY_PAGE) return out.reverse();
      before = Number(rows[rows.length - 1].seq);
    }
  }

  subscribe(fn: (l: AccessLog) => void): () => void {
    this.#feed.on('log', fn);
    return () => this.#feed.off('log', fn);
  }

  /** Writes what is queued and stops the writer; call before closing the database. */
  async close(): Promise<void> {
    this.#closing = true;
    this.flush();
    if (this.#sink) {
      await Promise.all([...this.#sinkWrites]);
      return;
    }
    if (!this.#worker) return;
    const worker = this.#worker;
    const closed = new Promise<void>((resolve) => worker.on('message', (m: { type: string }) => m.type === 'closed' && resolve()));
    // The writer is unref'd so it never keeps the process alive; while we wait for its last batch it must, or a
    // process with nothing else left exits before close() resolves (and before the database is closed).
    worker.ref();
    worker.postMessage({ type: 'close' });
    await closed;
    await worker.terminate();
  }
}
