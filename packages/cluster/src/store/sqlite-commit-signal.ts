import type { CommitSignal } from './change-feed.js';
import type { DB } from './db.js';

/**
 * "Another process committed to this file": SQLite's data_version changes exactly when another connection (a
 * --workers sibling, the AccessLog writer thread) committed. Checking it costs microseconds, so a short poll is
 * cheap, and the change log then says what, if anything, a mirror must apply.
 */
export class SqliteCommitSignal implements CommitSignal {
  constructor(private readonly db: DB, private readonly intervalMs = 100) {}

  watchCommits(changed: () => void): () => void {
    if (this.db.memory) return () => {};
    let seen = this.db.pragma('data_version', { simple: true });
    const timer = setInterval(() => {
      if (!this.db.open) return;
      const now = this.db.pragma('data_version', { simple: true });
      if (now === seen) return;
      seen = now;
      changed();
    }, this.intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
