// The PostgreSQL end of the synchronous bridge (sync-pg.ts): one pg connection, one statement at a time, in the
// order the main thread sent them. The main thread blocks on `flag` (Atomics.wait) until the reply is posted.
// Plain JS (not TS) because worker threads do not inherit the tsx loader the CLIs register in the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';

// int8 (versions, ms timestamps, counts) as JS numbers: every value the cluster stores fits in 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

const { url, statementTimeoutMs, connectTimeoutMs } = workerData;
const port = workerData.port;
const flag = new Int32Array(workerData.flag);
/** @type {pg.Client | undefined} */
let client;
/** The transaction the current connection is in (0: none); a statement of another one must not run on it. */
let clientTxn = 0;

function connectionError(err) {
  const code = err?.code ?? '';
  if (/^(08|57P0)/.test(code)) return true; // connection exception, admin/crash shutdown
  return !/^[0-9A-Z]{5}$/.test(code); // no SQLSTATE: a socket error, timeout or "Connection terminated"
}

async function connection() {
  if (client) return client;
  const c = new pg.Client({
    connectionString: url, connectionTimeoutMillis: connectTimeoutMs, statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 1000, application_name: 'octelium-cluster',
  });
  c.on('error', () => drop(c));
  await c.connect();
  client = c;
  clientTxn = 0;
  return c;
}

function drop(c) {
  if (client !== c) return;
  client = undefined;
  clientTxn = 0;
  c.end().catch(() => {});
}

function reply(msg) {
  port.postMessage(msg);
  Atomics.add(flag, 0, 1);
  Atomics.notify(flag, 0);
}

let chain = Promise.resolve();
port.on('message', (req) => {
  chain = chain.then(() => handle(req));
});

async function handle(req) {
  if (req.type === 'close') {
    if (client) await client.end().catch(() => {});
    client = undefined;
    return reply({ id: req.id, rows: [], rowCount: 0 });
  }
  let c;
  try {
    // A statement of a transaction must run on the connection that began it: after a reconnect it would run on its
    // own, committed by itself, and the transaction would be half applied.
    if (req.txn && !req.begin && (!client || clientTxn !== req.txn)) throw Object.assign(new Error('the store connection was lost mid-transaction; nothing of it was committed'), { code: 'CONNECTION_LOST' });
    c = await connection();
    const r = await c.query(req.sql, req.params);
    if (req.begin) clientTxn = req.txn;
    if (req.end) clientTxn = 0;
    reply({ id: req.id, rows: r.rows, rowCount: r.rowCount ?? 0 });
  } catch (err) {
    const conn = connectionError(err);
    if (conn && c) drop(c);
    reply({ id: req.id, error: { message: err?.message ?? String(err), code: err?.code, connection: conn } });
  }
}

parentPort.postMessage({ type: 'ready' });
