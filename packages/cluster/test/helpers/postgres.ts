/**
 * A real PostgreSQL 15 for tests (../shared/docs/toolchain.md, "Real components"): its own data dir and port, one
 * database per caller, stopped and removed afterwards. Debian's server refuses to run as root, so as root the data
 * dir is handed to the `postgres` user and the binaries run through runuser.
 *
 * Missing PostgreSQL: under CI=true that is a failure (CI installs it with scripts/ci-components.sh); on a laptop
 * the caller gets `undefined` and prints a loud SKIP line.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const BIN = process.env.OCTELIUM_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const ROLE = 'octelium';

export interface TestPostgres {
  /** Base URL without a database: `postgres://octelium@127.0.0.1:PORT`. */
  baseURL: string;
  port: number;
  /** A fresh, empty database; its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown), like an operator restarting it; `start()` (idempotent) brings it back on the same port. */
  stop(): void;
  start(): void;
  /** Stops it and removes its data dir. */
  close(): void;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const isRoot = process.getuid?.() === 0;
/** Runs a PostgreSQL binary as the `postgres` user when we are root (the server refuses root). */
function pgRun(bin: string, args: string[]): void {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', join(BIN, bin), ...args]] : [join(BIN, bin), args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

/** Why PostgreSQL cannot be used here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  if (!existsSync(join(BIN, 'initdb')) || !existsSync(join(BIN, 'pg_ctl'))) return `PostgreSQL 15 binaries not found in ${BIN} (apt-get install postgresql)`;
  if (isRoot && spawnSync('id', ['postgres']).status !== 0) return 'no `postgres` system user to run the server as';
  return undefined;
}

/**
 * Starts a private PostgreSQL, or returns undefined after printing a SKIP line (never under CI=true: there a missing
 * PostgreSQL throws). `what` names the tests that need it, for the SKIP line.
 */
export async function startTestPostgres(what: string): Promise<TestPostgres | undefined> {
  const missing = postgresMissing();
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL is required under CI=true (${what}): ${missing}`);
    console.log(`SKIP: ${what}: ${missing}`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'octelium-pg-'));
  if (isRoot) execFileSync('chmod', ['755', dir]);
  const data = join(dir, 'data');
  if (isRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString().trim()), Number(execFileSync('id', ['-g', 'postgres']).toString().trim()));
  pgRun('initdb', ['-D', data, '-A', 'trust', '-U', ROLE, '--no-sync', '-E', 'UTF8']);
  // Test speed over durability: no fsync; small shared memory so several test servers fit on one machine.
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=200`;
  const start = () => existsSync(join(data, 'postmaster.pid')) || pgRun('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'pg.log'), '-w', '-t', '30', 'start']);
  const stop = () => {
    if (existsSync(join(data, 'postmaster.pid'))) pgRun('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  };
  start();
  const baseURL = `postgres://${ROLE}@127.0.0.1:${port}`;
  let n = 0;
  return {
    baseURL, port,
    async createDatabase(name = `t${process.pid}_${++n}_${Date.now() % 100000}`) {
      const c = new pg.Client({ connectionString: `${baseURL}/postgres` });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name}"`);
      } finally {
        await c.end();
      }
      return `${baseURL}/${name}`;
    },
    stop, start,
    close() {
      try {
        stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
