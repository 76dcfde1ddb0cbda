import { randomBytes } from 'node:crypto';
import type { SharedAccessLogTable } from '../accesslog/store.js';
import { ChangeFeed } from './change-feed.js';
import { openDatabase, type DB } from './db.js';
import { migrate } from './postgres/migrations.js';
import { describeURL, PgSql } from './postgres/sync-pg.js';
import { SqliteCommitSignal } from './sqlite-commit-signal.js';
import { SqliteSql, type Sql } from './sql.js';

export interface StoreLocation {
  /** SQLite: the data dir holding octelium.db (also where bootstrap-token and cluster.json go for either engine). */
  dataDir: string | ':memory:';
  /** `postgres://USER[:PASSWORD]@HOST:PORT/DB` (design.md §9); absent or `sqlite:` = SQLite in dataDir. */
  url?: string;
}

/** An opened store: the statements, the change feed every mirror hangs off, and what the AccessLog store writes to. */
export interface OpenedStore {
  kind: 'sqlite' | 'postgres';
  /** Where it is, for humans (never a password). */
  where: string;
  sql: Sql;
  feed: ChangeFeed;
  accessLogTable: DB | SharedAccessLogTable;
  /** Starts following other processes' commits. */
  follow(): void;
  /** Throws (503 UNREACHABLE) when the store cannot be reached right now; for /readyz. */
  check(): void;
  close(): Promise<void>;
}

export function isPostgresURL(url: string | undefined): boolean {
  return !!url && /^postgres(ql)?:\/\//i.test(url);
}

/** Opens (and migrates) the store; a PostgreSQL that cannot be reached is a clear error, not a hang. */
export async function openStore(loc: StoreLocation): Promise<OpenedStore> {
  const url = loc.url;
  if (url && isPostgresURL(url)) return openPostgres(url);
  if (url && !/^sqlite:/i.test(url)) {
    throw new Error(`--store must be a postgres://USER@HOST:PORT/DB URL (or sqlite: for the data dir), got "${url.replace(/\/\/[^@/]*@/, '//…@')}"`);
  }
  const db = openDatabase(loc.dataDir);
  const sql = new SqliteSql(db);
  const feed = new ChangeFeed(sql);
  return {
    kind: 'sqlite', where: loc.dataDir === ':memory:' ? 'SQLite in memory' : `SQLite in ${loc.dataDir}`, sql, feed, accessLogTable: db,
    follow: () => feed.start(new SqliteCommitSignal(db)),
    check: () => void sql.get('SELECT 1'),
    close: async () => {
      feed.stop();
      db.close();
    },
  };
}

async function openPostgres(url: string): Promise<OpenedStore> {
  const where = `PostgreSQL at ${describeURL(url)}`;
  const sql = new PgSql(url);
  try {
    sql.get('SELECT 1');
    migrate(sql);
  } catch (err) {
    void sql.close();
    throw new Error(`cannot use the cluster store (${where}): ${(err as Error).message.replace(/^.*is unreachable: /, '').replace(/; retry shortly$/, '')}`);
  }
  // pg is loaded only here: a cluster on SQLite never pays for importing it (docs/performance.md, start-up).
  const [{ PgAccessLogSink }, { PgCommitSignal }] = await Promise.all([import('./postgres/access-log-sink.js'), import('./postgres/commit-signal.js')]);
  const feed = new ChangeFeed(sql);
  const sink = new PgAccessLogSink(url);
  return {
    kind: 'postgres', where, sql, feed, accessLogTable: { sql, sink },
    follow: () => feed.start(new PgCommitSignal(url)),
    check: () => void sql.get('SELECT 1'),
    close: async () => {
      feed.stop();
      await sink.close().catch(() => {});
      await sql.close();
    },
  };
}

/**
 * Replicas of one cluster share one store; a replica configured for another cluster must not join it (its tokens
 * would carry another issuer, its Services another host). The first replica records the domain and a cluster
 * secret (what replicas authenticate each other with); later ones must match. `secret`: the operator's, when set
 * (OCTELIUM_CLUSTER_SECRET), must equal the recorded one. Returns the cluster secret.
 */
export function joinCluster(store: OpenedStore, domain: string, secret?: string): string {
  return store.feed.transaction(() => {
    const get = (key: string) => store.sql.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key])?.value;
    const set = (key: string, value: string) => store.sql.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', [key, value]);
    const known = get('cluster.domain');
    if (known !== undefined && known !== domain && store.kind === 'postgres') {
      throw new Error(`the store (${store.where}) belongs to the cluster with --domain ${known}; this replica was started with --domain ${domain}. Replicas of one cluster need the same --domain (or use another database)`);
    }
    if (known !== domain) set('cluster.domain', domain);
    const recorded = get('cluster.secret');
    if (recorded !== undefined && secret !== undefined && recorded !== secret) {
      throw new Error(`OCTELIUM_CLUSTER_SECRET does not match the cluster secret recorded in the store (${store.where}); this replica is not part of that cluster`);
    }
    if (recorded !== undefined) return recorded;
    const fresh = secret ?? randomBytes(32).toString('base64url');
    set('cluster.secret', fresh);
    return fresh;
  });
}
