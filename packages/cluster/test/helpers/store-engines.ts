/**
 * One store suite, two engines (docs/scaling.md): SQLite in a data dir and a real PostgreSQL 15 (helpers/postgres.ts,
 * started in the calling file's `before` hook and removed in its `after`). Several stores opened on one database stand
 * for several processes (--workers siblings on SQLite, replicas on PostgreSQL).
 */
import { after, before } from 'node:test';
import { openStore, type OpenedStore, type StoreLocation } from '../../src/store/open-store.js';
import { startTestPostgres, type TestPostgres } from './postgres.js';
import { tempDir } from './testing.js';

export interface StoreEngine {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty store of this engine. */
  location(): Promise<StoreLocation & { dataDir: string }>;
  /** False for PostgreSQL when it is missing here (helpers/postgres.ts has printed the SKIP line; CI fails instead). */
  available(): boolean;
}

/** Registers the PostgreSQL hooks of the calling file; `postgres()` is the server once `before` has run. */
export function storeEngines(what: string): { engines: StoreEngine[]; postgres(): TestPostgres | undefined } {
  let pg: TestPostgres | undefined;
  before(async () => {
    pg = await startTestPostgres(what);
  });
  after(() => pg?.close());
  return {
    engines: [
      { name: 'sqlite', location: async () => ({ dataDir: tempDir() }), available: () => true },
      { name: 'postgres', location: async () => ({ dataDir: tempDir(), url: await pg!.createDatabase() }), available: () => pg !== undefined },
    ],
    postgres: () => pg,
  };
}

/** Two processes on one fresh store, each with its own connection, feed and mirrors; `third()` opens one more. */
export async function pair(engine: StoreEngine): Promise<{ a: OpenedStore; b: OpenedStore; third(): Promise<OpenedStore>; close(): Promise<void> }> {
  const loc = await engine.location();
  const opened = await Promise.all([openStore(loc), openStore(loc)]);
  return {
    a: opened[0], b: opened[1],
    third: async () => {
      const s = await openStore(loc);
      opened.push(s);
      return s;
    },
    close: async () => void (await Promise.all(opened.map((s) => s.close()))),
  };
}
