import { randomUUID } from 'node:crypto';
import type { DB } from '../store/db.js';

/**
 * This cluster's identity for the octelium.io/cluster label: created once, kept in the store, so a restart adopts its
 * own containers and two clusters sharing one Docker daemon (tests, a dev and a CI cluster) never remove each other's.
 */
export function clusterId(db: DB): string {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'containerClusterID'").get() as { value: string } | undefined;
  if (row) return row.value;
  const id = randomUUID().slice(0, 8);
  db.prepare("INSERT INTO meta (key, value) VALUES ('containerClusterID', ?) ON CONFLICT(key) DO NOTHING").run(id);
  return (db.prepare("SELECT value FROM meta WHERE key = 'containerClusterID'").get() as { value: string }).value;
}
