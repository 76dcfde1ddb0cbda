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

// A write can fail (SQLITE_FULL on a full disk, SQLITE_BUSY past the timeout). The thread must outlive that: a thrown
// error would end it, and every later AccessLog would then be kept in memory only, and lost on restart.
function tryTrim() {
  try {
    trim.run(workerData.maxRows);
  } catch {
    /* a delete needs WAL space too; the next trim catches up */
  }
}

parentPort.on('message', (msg) => {
  if (msg.type === 'batch') {
    try {
      writeBatch(msg.rows);
    } catch (err) {
      parentPort.postMessage({ type: 'failed', from: msg.from, upto: msg.upto, code: err?.code, message: err?.message });
      return;
    }
    // Trimming scans the index; once a second is plenty for a bound measured in tens of thousands.
    if (Date.now() - lastTrim > 1000) {
      tryTrim();
      lastTrim = Date.now();
    }
    parentPort.postMessage({ type: 'committed', upto: msg.upto });
  } else if (msg.type === 'close') {
    tryTrim();
    db.close();
    parentPort.postMessage({ type: 'closed' });
  }
});
