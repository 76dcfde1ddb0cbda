import pg from 'pg';
import type { AccessLogSink, Row } from '../../accesslog/store.js';

/** How often the table is trimmed to `maxRows` (the retention): a trim scans an index, so not per batch. */
const TRIM_EVERY_MS = 1000;

/**
 * AccessLog batches into PostgreSQL without blocking the gateway: asynchronous pg on a small pool (not the
 * synchronous bridge), one multi-row INSERT per batch. Failed batches are retried by AccessLogStore.
 */
export class PgAccessLogSink implements AccessLogSink {
  readonly #pool: pg.Pool;
  #lastTrim = 0;

  constructor(url: string) {
    this.#pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 2000, idleTimeoutMillis: 30_000, application_name: 'octelium-cluster-accesslog' });
    this.#pool.on('error', () => {}); // an idle client lost with the server: the next write reconnects
  }

  async write(rows: Row[], maxRows: number): Promise<void> {
    const cols: string[][] = [[], [], [], [], [], []];
    for (const r of rows) r.forEach((v, i) => cols[i].push(v as string));
    await this.#pool.query(
      'INSERT INTO access_logs (id, created_at, service, user_name, status, json) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])',
      cols,
    );
    if (Date.now() - this.#lastTrim < TRIM_EVERY_MS) return;
    this.#lastTrim = Date.now();
    await this.#pool.query('DELETE FROM access_logs WHERE seq <= (SELECT MAX(seq) FROM access_logs) - $1', [maxRows]).catch(() => {});
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}
