// AccessLog writer thread: inserts batches into the cluster's SQLite file on its own connection, so inserts,
// trims and WAL checkpoints never stall the gateway's event loop. Plain JS (not TS) because worker threads do
// not inherit the tsx loader the CLIs register in the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 5000');
const insert = db.prepare('INSERT INTO access_logs (id, created_at, service, user_name, status, json) VALUES (?, ?, ?, ?, ?, ?)');
const trim = db.prepare('DELETE FROM access_logs WHERE seq <= (SELECT MAX(seq) FROM access_logs) - ?');
const writeBatch = db.transaction((rows) => {
  for (const r of rows) insert.run(r[0], r[1], r[2], r[3], r[4], r[5]);
});
let lastTrim = 0;

parentPort.on('message', (msg) => {
  if (msg.type === 'batch') {
    writeBatch(msg.rows);
    // Trimming scans the index; once a second is plenty for a bound measured in tens of thousands.
    if (Date.now() - lastTrim > 1000) {
      trim.run(workerData.maxRows);
      lastTrim = Date.now();
    }
    parentPort.postMessage({ type: 'committed', upto: msg.upto });
  } else if (msg.type === 'close') {
    trim.run(workerData.maxRows);
    db.close();
    parentPort.postMessage({ type: 'closed' });
  }
});
