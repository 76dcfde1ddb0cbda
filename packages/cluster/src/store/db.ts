import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { OcteliumError } from '@octelium-ts/shared';

export type DB = Database.Database;

/** Shared by both engines' migrations: leases, not mirrored; read only when a tunnelled request reaches a replica that does not hold the agent. */
export const REPLICA_TABLES = `
  CREATE TABLE replicas (id TEXT PRIMARY KEY, advertise_url TEXT NOT NULL, started_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
  CREATE TABLE tunnel_agents (agent_id TEXT PRIMARY KEY, replica_id TEXT NOT NULL, user_name TEXT NOT NULL,
    services TEXT NOT NULL, serve_all INTEGER NOT NULL);
  CREATE INDEX tunnel_agents_user ON tunnel_agents (user_name);`;

export const OAUTH_CODES = 'CREATE TABLE oauth_codes (hash TEXT PRIMARY KEY, json TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0, session_name TEXT, expires_at BIGINT NOT NULL);';

export const MCP_SESSION_BINDINGS = 'CREATE TABLE mcp_session_bindings (key TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at BIGINT NOT NULL);';

/**
 * Shared by both engines' migrations: leader leases (replicas/leader-lease.ts; one row per cluster-wide job, held by a
 * replica id until `expires_at`), and the container endpoints the leading reconciler publishes for every replica's
 * gateway (containers/endpoint-feed.ts; mirrored through the change log, whose triggers each engine adds itself).
 */
export const LEADER_TABLES = `
  CREATE TABLE leader_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL);
  CREATE TABLE container_endpoints (workload TEXT PRIMARY KEY, json TEXT NOT NULL);`;

/** Numbered schema changes, applied once each in order (user_version counts them). */
const MIGRATIONS: Array<string | ((db: DB) => void)> = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE resources (
     kind TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL UNIQUE,
     resource_version INTEGER NOT NULL, json TEXT NOT NULL,
     PRIMARY KEY (kind, name));
   CREATE TABLE tokens (
     hash TEXT PRIMARY KEY, type TEXT NOT NULL, user_name TEXT NOT NULL,
     credential_name TEXT, session_name TEXT, client_id TEXT UNIQUE, expires_at INTEGER);
   CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, alg TEXT NOT NULL, private_jwk TEXT NOT NULL, public_jwk TEXT NOT NULL, created_at TEXT NOT NULL);
   CREATE TABLE access_logs (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, created_at TEXT NOT NULL,
     service TEXT, user_name TEXT, status TEXT, json TEXT NOT NULL);`,
  // 2: the change log (store/change-feed.ts) that keeps the in-memory mirrors of several processes on one file
  // (--workers) in step, and the OAuth tables that used to be created on demand by their classes.
  (db) => {
    db.exec(`INSERT INTO meta (key, value) VALUES ('resourceVersion', '0') ON CONFLICT(key) DO NOTHING;
      CREATE TABLE IF NOT EXISTS oauth_clients (
        client_id TEXT PRIMARY KEY, metadata TEXT NOT NULL, secret_hash TEXT, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
        hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, session_name TEXT NOT NULL, scope TEXT, resource TEXT,
        expires_at INTEGER NOT NULL, rotated INTEGER NOT NULL DEFAULT 0);`);
    const columns = db.prepare('PRAGMA table_info(oauth_clients)').all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === 'used_at')) db.exec('ALTER TABLE oauth_clients ADD COLUMN used_at INTEGER');
    db.exec(CHANGE_LOG_SQLITE);
  },
  // 3: replicas (--workers siblings) and the tunnel agents each holds, for forwarding (src/replicas/).
  REPLICA_TABLES,
  // 4: pending consents and authorization codes (oauth/grants.ts), shared by every process on the store.
  `CREATE TABLE oauth_pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL, json TEXT NOT NULL,
     failures INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
   CREATE INDEX oauth_pending_source ON oauth_pending (source, seq);
   ${OAUTH_CODES}`,
  // 5: MCP session bindings shared by replicas (mcp/sessions.ts).
  MCP_SESSION_BINDINGS,
  // 6: one container reconciler per cluster (leader lease) and the endpoints it shares with the other processes.
  `${LEADER_TABLES}
  ${['INSERT', 'UPDATE', 'DELETE'].map((ev) => {
    const row = ev === 'DELETE' ? 'OLD' : 'NEW';
    return `
  CREATE TRIGGER container_endpoints_${ev.toLowerCase()} AFTER ${ev} ON container_endpoints BEGIN
    INSERT INTO changes (tbl, op, json) VALUES ('container_endpoints', '${ev === 'DELETE' ? 'delete' : 'put'}', json_object('workload', ${row}.workload, 'json', ${row}.json)); END;`;
  }).join('')}`,
];

/**
 * Every write to a mirrored table appends its row to `changes`, by trigger, so no writer can forget to. The
 * version is the commit order (SQLite has one writer at a time); `at` (unix seconds) drives pruning.
 */
const CHANGE_LOG_SQLITE = `
  CREATE TABLE changes (version INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, op TEXT NOT NULL, json TEXT NOT NULL,
    at INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER)));
  ${['INSERT', 'UPDATE', 'DELETE'].map((ev) => {
    const row = ev === 'DELETE' ? 'OLD' : 'NEW';
    const op = ev === 'DELETE' ? 'delete' : 'put';
    return `
  CREATE TRIGGER resources_${ev.toLowerCase()} AFTER ${ev} ON resources BEGIN
    INSERT INTO changes (tbl, op, json) VALUES ('resources', '${op}', json_object('kind', ${row}.kind, 'name', ${row}.name, 'resource_version', ${row}.resource_version, 'json', ${row}.json)); END;
  CREATE TRIGGER tokens_${ev.toLowerCase()} AFTER ${ev} ON tokens BEGIN
    INSERT INTO changes (tbl, op, json) VALUES ('tokens', '${op}', json_object('hash', ${row}.hash, 'type', ${row}.type, 'user_name', ${row}.user_name,
      'credential_name', ${row}.credential_name, 'session_name', ${row}.session_name, 'client_id', ${row}.client_id, 'expires_at', ${row}.expires_at)); END;
  CREATE TRIGGER signing_keys_${ev.toLowerCase()} AFTER ${ev} ON signing_keys BEGIN
    INSERT INTO changes (tbl, op, json) VALUES ('signing_keys', '${op}', json_object('kid', ${row}.kid, 'alg', ${row}.alg, 'private_jwk', ${row}.private_jwk,
      'public_jwk', ${row}.public_jwk, 'created_at', ${row}.created_at)); END;`;
  }).join('')}`;

/** Opens (creating when missing) the cluster database: one SQLite file in WAL mode, migrated forward. */
export function openDatabase(dataDir: string | ':memory:'): DB {
  let file = ':memory:';
  if (dataDir !== ':memory:') {
    mkdirSync(dataDir, { recursive: true });
    file = join(dataDir, 'octelium.db');
  }
  const db = new Database(file);
  // 16 KiB pages (SQLite's default is 4): an AccessLog row is ~1.5 KB, and a WAL frame is written per page, so the
  // writer thread's CPU per inserted log fell from ~10.5 to ~6.7 µs (docs/performance.md, session 4). Only takes
  // effect on a new file; an existing data dir keeps the page size it was created with.
  db.pragma('page_size = 16384');
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the last commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  // IMMEDIATE: sibling processes (--workers) opening the same file at once migrate it exactly once between them.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      const m = MIGRATIONS[v];
      if (typeof m === 'string') db.exec(m);
      else m(db);
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
  return db;
}

/**
 * A full disk is an operator's problem with a clear fix, not an internal error: SQLITE_FULL becomes a 507 that
 * names the cause. SQLite has rolled the transaction back by then, so nothing of the write was kept.
 */
export function storageError(err: unknown): unknown {
  if ((err as { code?: unknown } | null)?.code !== 'SQLITE_FULL') return err;
  return new OcteliumError('INSUFFICIENT_STORAGE', 'the cluster database is out of disk space (SQLITE_FULL); nothing was written: free space in the data dir and retry');
}
