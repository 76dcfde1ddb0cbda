import { LEADER_TABLES, MCP_SESSION_BINDINGS, OAUTH_CODES, REPLICA_TABLES } from '../db.js';
import { WRITE_LOCK, type PgSql } from './sync-pg.js';

/** Held while migrating, so replicas starting together apply each migration exactly once. */
const MIGRATE_LOCK = 0x6f63_7402;

/**
 * The PostgreSQL schema, as numbered migrations (the SQLite schema is in ../db.ts; the tables are the same, so one
 * store suite tests both). Never edit a migration that has shipped: add the next one.
 */
export const PG_MIGRATIONS: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE SEQUENCE octelium_version;
   CREATE TABLE resources (
     kind TEXT NOT NULL, name TEXT NOT NULL, uid TEXT NOT NULL UNIQUE,
     resource_version BIGINT NOT NULL, json TEXT NOT NULL,
     PRIMARY KEY (kind, name));
   CREATE TABLE tokens (
     hash TEXT PRIMARY KEY, type TEXT NOT NULL, user_name TEXT NOT NULL,
     credential_name TEXT, session_name TEXT, client_id TEXT UNIQUE, expires_at BIGINT);
   CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, alg TEXT NOT NULL, private_jwk TEXT NOT NULL, public_jwk TEXT NOT NULL, created_at TEXT NOT NULL);
   CREATE TABLE access_logs (
     seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL, created_at TEXT NOT NULL,
     service TEXT, user_name TEXT, status TEXT, json TEXT NOT NULL);
   CREATE TABLE oauth_clients (client_id TEXT PRIMARY KEY, metadata TEXT NOT NULL, secret_hash TEXT, created_at BIGINT NOT NULL, used_at BIGINT);
   CREATE TABLE oauth_refresh_tokens (
     hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, session_name TEXT NOT NULL, scope TEXT, resource TEXT,
     expires_at BIGINT NOT NULL, rotated INTEGER NOT NULL DEFAULT 0);
   -- The change log (store/change-feed.ts). Versions come from one sequence under WRITE_LOCK, so they follow commit
   -- order and a replica can catch up with "everything after the version I have".
   CREATE TABLE changes (version BIGINT PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL, json TEXT NOT NULL,
     at BIGINT NOT NULL DEFAULT extract(epoch from now())::bigint);
   CREATE FUNCTION octelium_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     -- Writers that did not take the lock at BEGIN (single statements) take it here, before their version is drawn.
     PERFORM pg_advisory_xact_lock(${WRITE_LOCK});
     INSERT INTO changes (version, tbl, op, json) VALUES (nextval('octelium_version'), TG_TABLE_NAME,
       CASE WHEN TG_OP = 'DELETE' THEN 'delete' ELSE 'put' END,
       row_to_json(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END)::text);
     PERFORM pg_notify('octelium_changes', '');
     RETURN NULL;
   END $$;
   CREATE TRIGGER resources_changes AFTER INSERT OR UPDATE OR DELETE ON resources FOR EACH ROW EXECUTE FUNCTION octelium_log_change();
   CREATE TRIGGER tokens_changes AFTER INSERT OR UPDATE OR DELETE ON tokens FOR EACH ROW EXECUTE FUNCTION octelium_log_change();
   CREATE TRIGGER signing_keys_changes AFTER INSERT OR UPDATE OR DELETE ON signing_keys FOR EACH ROW EXECUTE FUNCTION octelium_log_change();`,
  // 2: replica leases and the tunnel agents each replica holds (src/replicas/).
  REPLICA_TABLES,
  // 3: pending consents and authorization codes (oauth/grants.ts), so a flow may cross replicas.
  `CREATE TABLE oauth_pending (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL, json TEXT NOT NULL,
     failures INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
   CREATE INDEX oauth_pending_source ON oauth_pending (source, seq);
   ${OAUTH_CODES}`,
  // 4: MCP session bindings shared by replicas (mcp/sessions.ts).
  MCP_SESSION_BINDINGS,
  // 5: one container reconciler per cluster (leader lease) and the endpoints it shares with the other replicas.
  `${LEADER_TABLES}
   CREATE TRIGGER container_endpoints_changes AFTER INSERT OR UPDATE OR DELETE ON container_endpoints FOR EACH ROW EXECUTE FUNCTION octelium_log_change();`,
];

/** Applies the migrations this database lacks, once, in one transaction, whatever number of replicas try at once. */
export function migrate(sql: PgSql): number {
  let applied = 0;
  sql.transaction(() => {
    sql.get('SELECT pg_advisory_xact_lock(?)', [MIGRATE_LOCK]);
    sql.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
    const have = Number(sql.get<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations')?.v ?? 0);
    if (have > PG_MIGRATIONS.length) {
      throw new Error(`the store's schema is at version ${have}, newer than this octelium-cluster knows (${PG_MIGRATIONS.length}); upgrade this replica`);
    }
    for (let v = have; v < PG_MIGRATIONS.length; v++) {
      sql.run(PG_MIGRATIONS[v]);
      sql.run('INSERT INTO schema_migrations (version) VALUES (?)', [v + 1]);
      applied++;
    }
  });
  return applied;
}
