import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { matchesAccessLog, type AccessLog, type AccessLogFilter } from '@octelium-ts/shared';
import type { DB } from '../store/db.js';
import { serializeLog } from './serialize.js';

const FLUSH_MS = 50;
/** How soon a batch the writer could not commit (a full disk) is tried again. */
const RETRY_MS = 1000;

type Row = [id: string, createdAt: string, service: string | null, user: string | null, status: string, json: string];

function toRow(l: AccessLog): Row {
  const c = l.entry.common;
  return [l.metadata.id, l.metadata.createdAt, c.serviceRef?.name ?? null, c.userRef?.name ?? null, c.status, serializeLog(l)];
}

/**
 * AccessLogs: kept in SQLite (bounded to `maxRows`, oldest dropped) and pushed live to followers.
 * On the request path a log is only queued; batches go to a writer thread with its own SQLite connection
 * (WAL lets it write while this thread reads), so inserts and checkpoints never stall the gateway. Logs
 * handed to the writer stay in `#pending` until it confirms the commit, so `query` always sees every
 * recorded log. An in-memory database (tests) has no file to share, so there the writes stay in-thread.
 */
export class AccessLogStore {
  readonly #db: DB;
  readonly #feed = new EventEmitter();
  #queue: AccessLog[] = [];
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  /** Handed to the writer, not yet confirmed committed: seq → log. */
  readonly #pending = new Map<number, AccessLog>();
  readonly #worker: Worker | undefined;
  readonly #insert;
  readonly #trim;
  #failing = false;
  #closing = false;
  #writeFailures = 0;
  #dropped = 0;

  constructor(db: DB, private readonly maxRows = 50_000) {
    this.#db = db;
    this.#feed.setMaxListeners(0);
    this.#insert = db.prepare('INSERT INTO access_logs (id, created_at, service, user_name, status, json) VALUES (?, ?, ?, ?, ?, ?)');
    this.#trim = db.prepare('DELETE FROM access_logs WHERE seq <= (SELECT MAX(seq) FROM access_logs) - ?');
    if (!db.memory) {
      this.#worker = new Worker(new URL('./writer-worker.mjs', import.meta.url), { workerData: { file: db.name, maxRows } });
      this.#worker.on('message', (m: { type: string; from?: number; upto?: number; code?: string; message?: string }) => {
        if (m.type === 'failed') return this.#writeFailed(m as Required<typeof m>);
        if (m.type !== 'committed') return;
        for (const seq of this.#pending.keys()) {
          if (seq > m.upto!) break;
          this.#pending.delete(seq);
        }
        if (this.#failing) console.error(`access log writer: writing again (${this.#writeFailures} batches failed so far, ${this.#dropped} AccessLogs dropped)`);
        this.#failing = false;
      });
      this.#worker.on('error', (err) => console.error('access log writer failed:', err));
      this.#worker.unref();
    }
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
    const back: AccessLog[] = [];
    for (const [seq, log] of this.#pending) {
      if (seq > m.upto) break;
      if (seq > m.from) {
        back.push(log);
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

  /** Stores and publishes one AccessLog; returns it as stored (after redaction, when a redactor is set). */
  record(log: AccessLog): AccessLog {
    const stored = this.redact ? this.redact(log) : log;
    this.#queue.push(stored);
    this.#feed.emit('log', stored);
    this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    return stored;
  }

  /** Removes configured fields before anything is stored, streamed or exported (set by the visibility subsystem). */
  redact?: (log: AccessLog) => AccessLog;

  /** Hands every queued log to the writer (or writes it, in-thread). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#queue.length) return;
    const batch = this.#queue;
    this.#queue = [];
    if (this.#worker) {
      const from = this.#seq;
      for (const l of batch) this.#pending.set(++this.#seq, l);
      this.#worker.postMessage({ type: 'batch', rows: batch.map(toRow), from, upto: this.#seq });
      return;
    }
    this.#db.transaction(() => {
      for (const l of batch) this.#insert.run(...toRow(l));
      this.#trim.run(this.maxRows);
    })();
  }

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
    for (const log of [...this.#pending.values()].reverse()) {
      take(log);
      if (out.length >= limit) return out.reverse();
    }
    const rows = this.#db.prepare('SELECT json FROM access_logs ORDER BY seq DESC').iterate() as Iterable<{ json: string }>;
    for (const row of rows) {
      take(JSON.parse(row.json) as AccessLog);
      if (out.length >= limit) break;
    }
    return out.reverse();
  }

  subscribe(fn: (l: AccessLog) => void): () => void {
    this.#feed.on('log', fn);
    return () => this.#feed.off('log', fn);
  }

  /** Writes what is queued and stops the writer; call before closing the database. */
  async close(): Promise<void> {
    this.#closing = true;
    this.flush();
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
