import pg from 'pg';
import type { CommitSignal } from '../change-feed.js';

/**
 * "Another replica committed": PostgreSQL LISTEN on the channel the change-log trigger notifies. A notification
 * only says "look"; what changed is read from the log by version, so a notification lost while the connection was
 * down costs nothing: every (re)connect looks once, and a slow poll covers anything else.
 */
export class PgCommitSignal implements CommitSignal {
  #client: pg.Client | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #backoff = 250;

  constructor(private readonly url: string, private readonly pollMs = 5000) {}

  get listening(): boolean {
    return this.#client !== undefined;
  }

  watchCommits(changed: () => void): () => void {
    this.#stopped = false;
    void this.#connect(changed);
    // Also covers the time the LISTEN connection is down: catch-up then fails fast (store down) or finds the changes.
    let last = Date.now();
    this.#poll = setInterval(() => {
      if (this.#client && Date.now() - last < this.pollMs) return;
      last = Date.now();
      changed();
    }, 1000);
    this.#poll.unref();
    return () => this.#stop();
  }

  async #connect(changed: () => void): Promise<void> {
    if (this.#stopped) return;
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000, application_name: 'octelium-cluster-listen', keepAlive: true });
    const lost = () => {
      if (this.#client === c) this.#client = undefined;
      c.removeAllListeners('notification');
      c.end().catch(() => {});
      if (this.#stopped || this.#retry) return;
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        void this.#connect(changed);
      }, this.#backoff);
      this.#retry.unref();
      this.#backoff = Math.min(this.#backoff * 2, 2000);
    };
    c.on('error', lost);
    c.on('end', lost);
    c.on('notification', () => changed());
    try {
      await c.connect();
      await c.query('LISTEN octelium_changes');
    } catch {
      return lost();
    }
    if (this.#stopped) return void c.end().catch(() => {});
    this.#client = c;
    this.#backoff = 250;
    changed(); // whatever was committed while we were not listening
  }

  #stop(): void {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#poll) clearInterval(this.#poll);
    const c = this.#client;
    this.#client = undefined;
    c?.removeAllListeners();
    c?.on('error', () => {});
    void c?.end().catch(() => {});
  }
}
