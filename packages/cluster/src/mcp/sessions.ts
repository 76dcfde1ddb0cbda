import type { Sql } from '../store/sql.js';

/** Which list a tracked JSON-RPC request asked for. */
export type ListMethod = 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';

interface Binding {
  owner: string;
  /** List requests whose response has not been seen yet, by JSON-RPC id: it may come back on a resumed GET stream. */
  lists: Map<string, ListMethod>;
}

const MAX_SESSIONS = 100_000;
const MAX_TRACKED_PER_SESSION = 64;

/** Shared bindings older than this are forgotten (the MCP server will long have dropped the session). */
const SHARED_TTL_MS = 7 * 24 * 3600_000;
/**
 * Store lookups for ids this replica does not know, per second. A lookup blocks the event loop for a round trip,
 * and made-up ids cost nothing to send: past the budget an unknown id is simply unknown (404, the client
 * initializes again), so random ids cannot turn into a store query per request.
 */
const SHARED_LOOKUPS_PER_S = 200;

/**
 * Legacy-era MCP sessions (`Mcp-Session-Id`) bound to the principal that created them (mcp-spec.md §4.4: the
 * key is `<user>:<session>`, the user taken from the token, never from the client). In memory; with `shared` (a
 * store other replicas use too) a binding made on one replica is found by the others: written through on bind,
 * looked up once per replica on a miss, then served from memory. Without it, after a restart every id is unknown
 * and gets 404, which tells clients to initialize again.
 */
export class SessionBindings {
  readonly #m = new Map<string, Binding>();
  #budgetSecond = 0;
  #budgetLeft = 0;

  constructor(private readonly shared?: Sql) {}

  static key(service: string, sessionId: string): string {
    return `${service}\n${sessionId}`;
  }

  bind(service: string, sessionId: string, owner: string): void {
    const k = SessionBindings.key(service, sessionId);
    const existing = this.#m.get(k);
    if (existing?.owner === owner) return;
    if (existing || !this.#bindShared(k, owner)) {
      // An upstream that hands one id to two principals: fail closed, the id is nobody's.
      this.#m.delete(k);
      return;
    }
    this.#remember(k, owner);
  }

  #remember(k: string, owner: string): Binding {
    if (this.#m.size >= MAX_SESSIONS) this.#m.delete(this.#m.keys().next().value!); // oldest first
    const b = { owner, lists: new Map<string, ListMethod>() };
    this.#m.set(k, b);
    return b;
  }

  /** Records the binding in the shared store; false when another principal holds the id there (it is then nobody's). */
  #bindShared(k: string, owner: string): boolean {
    if (!this.shared) return true;
    try {
      const now = Date.now();
      this.shared.run('INSERT INTO mcp_session_bindings (key, owner, created_at) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING', [k, owner, now]);
      const row = this.shared.get<{ owner: string }>('SELECT owner FROM mcp_session_bindings WHERE key = ?', [k]);
      if (row?.owner === owner) return true;
      this.shared.run('UPDATE mcp_session_bindings SET owner = ? WHERE key = ?', ['', k]);
      return false;
    } catch {
      return true; // the store is down: this replica still knows the binding; others will answer 404 (re-initialize)
    }
  }

  #lookupShared(k: string): Binding | undefined {
    if (!this.shared) return undefined;
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.#budgetSecond) {
      this.#budgetSecond = second;
      this.#budgetLeft = SHARED_LOOKUPS_PER_S;
    }
    if (this.#budgetLeft <= 0) return undefined;
    this.#budgetLeft--;
    try {
      const row = this.shared.get<{ owner: string }>('SELECT owner FROM mcp_session_bindings WHERE key = ? AND created_at > ?', [k, Date.now() - SHARED_TTL_MS]);
      return row?.owner ? this.#remember(k, row.owner) : undefined;
    } catch {
      return undefined;
    }
  }

  /** 'ok', or why the id must be refused: never seen here, or another principal's. */
  check(service: string, sessionId: string, owner: string): 'ok' | 'unknown' | 'foreign' {
    const k = SessionBindings.key(service, sessionId);
    const b = this.#m.get(k) ?? this.#lookupShared(k);
    if (!b) return 'unknown';
    if (b.owner !== owner) return 'foreign';
    // Touch: Map order is insertion order, so re-inserting keeps the least recently used first for eviction.
    this.#m.delete(k);
    this.#m.set(k, b);
    return 'ok';
  }

  forget(service: string, sessionId: string): void {
    const k = SessionBindings.key(service, sessionId);
    this.#m.delete(k);
    try {
      this.shared?.run('DELETE FROM mcp_session_bindings WHERE key = ? OR created_at < ?', [k, Date.now() - SHARED_TTL_MS]);
    } catch {
      /* the store is down: the row expires */
    }
  }

  trackList(service: string, sessionId: string, id: string, method: ListMethod): void {
    const b = this.#m.get(SessionBindings.key(service, sessionId));
    if (!b) return;
    if (b.lists.size >= MAX_TRACKED_PER_SESSION) b.lists.delete(b.lists.keys().next().value!);
    b.lists.set(id, method);
  }

  /** The list method of a tracked request id, removing it (each response is rewritten once). */
  takeList(service: string, sessionId: string, id: string): ListMethod | undefined {
    const b = this.#m.get(SessionBindings.key(service, sessionId));
    const m = b?.lists.get(id);
    if (m) b!.lists.delete(id);
    return m;
  }

  get size(): number {
    return this.#m.size;
  }
}
