/** Which list a tracked JSON-RPC request asked for. */
export type ListMethod = 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';

interface Binding {
  owner: string;
  /** List requests whose response has not been seen yet, by JSON-RPC id: it may come back on a resumed GET stream. */
  lists: Map<string, ListMethod>;
}

const MAX_SESSIONS = 100_000;
const MAX_TRACKED_PER_SESSION = 64;

/**
 * Legacy-era MCP sessions (`Mcp-Session-Id`) bound to the principal that created them (mcp-spec.md §4.4: the
 * key is `<user>:<session>`, the user taken from the token, never from the client). In memory: after a restart
 * every id is unknown and gets 404, which tells clients to initialize again.
 */
export class SessionBindings {
  readonly #m = new Map<string, Binding>();

  static key(service: string, sessionId: string): string {
    return `${service}\n${sessionId}`;
  }

  bind(service: string, sessionId: string, owner: string): void {
    const k = SessionBindings.key(service, sessionId);
    const existing = this.#m.get(k);
    if (existing?.owner === owner) return;
    if (existing) {
      // An upstream that hands one id to two principals: fail closed, the id is nobody's.
      this.#m.delete(k);
      return;
    }
    if (this.#m.size >= MAX_SESSIONS) this.#m.delete(this.#m.keys().next().value!); // oldest first
    this.#m.set(k, { owner, lists: new Map() });
  }

  /** 'ok', or why the id must be refused: never seen here, or another principal's. */
  check(service: string, sessionId: string, owner: string): 'ok' | 'unknown' | 'foreign' {
    const k = SessionBindings.key(service, sessionId);
    const b = this.#m.get(k);
    if (!b) return 'unknown';
    if (b.owner !== owner) return 'foreign';
    // Touch: Map order is insertion order, so re-inserting keeps the least recently used first for eviction.
    this.#m.delete(k);
    this.#m.set(k, b);
    return 'ok';
  }

  forget(service: string, sessionId: string): void {
    this.#m.delete(SessionBindings.key(service, sessionId));
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
