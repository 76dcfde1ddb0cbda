import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { OcteliumError } from '@octelium-ts/shared';

export type DB = Database.Database;

const MIGRATIONS = [
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
];

/** Opens (creating when missing) the cluster database: one SQLite file in WAL mode, migrated forward. */
export function openDatabase(dataDir: string | ':memory:'): DB {
  let file = ':memory:';
  if (dataDir !== ':memory:') {
    mkdirSync(dataDir, { recursive: true });
    file = join(dataDir, 'octelium.db');
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the last commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
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
