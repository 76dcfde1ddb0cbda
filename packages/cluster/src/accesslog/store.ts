import { EventEmitter } from 'node:events';
import { matchesAccessLog, type AccessLog, type AccessLogFilter } from '@octelium-ts/shared';
import type { DB } from '../store/db.js';

const FLUSH_MS = 100;

/**
 * AccessLogs: kept in SQLite (bounded to `maxRows`, oldest dropped) and pushed live to followers.
 * Writes are batched and flushed off the request path, so logging costs a push per request.
 */
export class AccessLogStore {
  readonly #db: DB;
  readonly #feed = new EventEmitter();
  #queue: AccessLog[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #insert;
  readonly #trim;

  constructor(db: DB, private readonly maxRows = 50_000) {
    this.#db = db;
    this.#feed.setMaxListeners(0);
    this.#insert = db.prepare('INSERT INTO access_logs (id, created_at, service, user_name, status, json) VALUES (?, ?, ?, ?, ?, ?)');
    this.#trim = db.prepare('DELETE FROM access_logs WHERE seq <= (SELECT MAX(seq) FROM access_logs) - ?');
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

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#queue.length) return;
    const batch = this.#queue;
    this.#queue = [];
    this.#db.transaction(() => {
      for (const l of batch) {
        const c = l.entry.common;
        this.#insert.run(l.metadata.id, l.metadata.createdAt, c.serviceRef?.name ?? null, c.userRef?.name ?? null, c.status, JSON.stringify(l));
      }
      this.#trim.run(this.maxRows);
    })();
  }

  /** Newest `limit` matching logs, oldest first. */
  query(filter: AccessLogFilter, limit = 100): AccessLog[] {
    this.flush();
    const out: AccessLog[] = [];
    const rows = this.#db.prepare('SELECT json FROM access_logs ORDER BY seq DESC').iterate() as Iterable<{ json: string }>;
    for (const row of rows) {
      const log = JSON.parse(row.json) as AccessLog;
      if (matchesAccessLog(log, filter)) out.push(log);
      if (out.length >= limit) break;
    }
    return out.reverse();
  }

  subscribe(fn: (l: AccessLog) => void): () => void {
    this.#feed.on('log', fn);
    return () => this.#feed.off('log', fn);
  }
}
