import { randomUUID } from 'node:crypto';
import type { Sql } from '../store/sql.js';

/**
 * This cluster's identity for the octelium.io/cluster label: created once, kept in the store, so a restart adopts its
 * own containers and two clusters sharing one Docker daemon (tests, a dev and a CI cluster) never remove each other's.
 */
export function clusterId(sql: Sql): string {
  const row = sql.get<{ value: string }>("SELECT value FROM meta WHERE key = 'containerClusterID'");
  if (row) return row.value;
  const id = randomUUID().slice(0, 8);
  sql.run("INSERT INTO meta (key, value) VALUES ('containerClusterID', ?) ON CONFLICT(key) DO NOTHING", [id]);
  return sql.get<{ value: string }>("SELECT value FROM meta WHERE key = 'containerClusterID'")!.value;
}
