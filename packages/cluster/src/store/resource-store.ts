import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { KINDS, OcteliumError, type KindName, type Reference, type Resource } from '@octelium-ts/shared';
import { storageError } from './db.js';
import { feedOf, type ChangeFeed, type FeedOp, type StoreSource } from './change-feed.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
/**
 * `remote`: committed by another process or replica and only mirrored here. Watchers that react by writing
 * (cascading deletes) leave those to the process that made the change; watchers that keep caches react to both.
 */
export interface Change { type: ChangeType; resource: Resource; previous?: Resource; remote?: boolean }

/** Fields a user controls; everything else in metadata is server-set. Used to decide `unchanged`. */
function userView(r: Resource): string {
  const { name, labels, annotations, description, displayName, tags, picURL } = r.metadata;
  return JSON.stringify([name, labels ?? null, annotations ?? null, description ?? null, displayName ?? null, tags ?? null, picURL ?? null, r.spec, r.data ?? null, r.status ?? null]);
}

/**
 * All resources, persisted in the store (SQLite or PostgreSQL) and mirrored in memory. Reads never touch the
 * database (the gateway reads on every request); every write goes to the database first, then to memory, then to
 * the change feed. resourceVersion is one cluster-wide counter, so it also orders the change feed. Writes made by
 * other processes or replicas arrive through the change log (ChangeFeed) and are emitted with `remote: true`.
 *
 * Every write is checked against the stored resourceVersion in SQL (optimistic concurrency), so a writer whose
 * mirror is behind gets a 409 instead of overwriting a change it has not seen.
 */
export class ResourceStore {
  readonly feed: ChangeFeed;
  readonly #cache = new Map<KindName, Map<string, Resource>>();
  readonly #feed = new EventEmitter();
  /** Remote changes applied while a local transaction was open; emitted once it ends. */
  #remote: Change[] = [];

  constructor(source: StoreSource) {
    this.feed = feedOf(source);
    this.#feed.setMaxListeners(0);
    for (const k of Object.keys(KINDS) as KindName[]) this.#cache.set(k, new Map());
    this.#load();
    this.feed.register('resources', {
      applyRemote: (op, row) => this.#applyRemote(op, row),
      reload: () => this.#reload(),
    });
  }

  get #sql() {
    return this.feed.sql;
  }

  #load(): void {
    for (const row of this.#sql.all<{ json: string }>('SELECT json FROM resources')) {
      const r = JSON.parse(row.json) as Resource;
      this.#cache.get(r.kind)?.set(r.metadata.name, r);
    }
  }

  /** A change committed elsewhere; older than what the mirror holds (or already here) is ignored. */
  #applyRemote(op: FeedOp, row: Record<string, unknown>): void {
    const r = JSON.parse(row.json as string) as Resource;
    const m = this.#cache.get(r.kind);
    if (!m) return;
    const current = m.get(r.metadata.name);
    const rv = Number(r.metadata.resourceVersion);
    if (op === 'put') {
      if (current && Number(current.metadata.resourceVersion) >= rv) return;
      m.set(r.metadata.name, r);
      this.#emitRemote({ type: current ? 'MODIFIED' : 'ADDED', resource: r, ...(current ? { previous: current } : {}), remote: true });
    } else {
      if (!current || Number(current.metadata.resourceVersion) > rv) return;
      m.delete(r.metadata.name);
      this.#emitRemote({ type: 'DELETED', resource: current, previous: current, remote: true });
    }
  }

  /** The log was pruned past us: diff the whole table against the mirror. */
  #reload(): void {
    const seen = new Set<string>();
    for (const row of this.#sql.all<{ json: string }>('SELECT json FROM resources')) {
      const r = JSON.parse(row.json) as Resource;
      seen.add(`${r.kind}/${r.metadata.name}`);
      this.#applyRemote('put', { json: row.json });
    }
    for (const [kind, m] of this.#cache) {
      for (const r of [...m.values()]) if (!seen.has(`${kind}/${r.metadata.name}`)) this.#applyRemote('delete', { json: JSON.stringify(r) });
    }
  }

  #emitRemote(c: Change): void {
    if (this.#pending) this.#remote.push(c);
    else this.#feed.emit('change', c);
  }

  /** Applies what other processes committed since the last look (the feed does this by itself once started). */
  refresh(): void {
    this.feed.catchUp();
  }

  get(kind: KindName, name: string): Resource | undefined {
    return this.#cache.get(kind)!.get(name);
  }

  /**
   * `get` for requests that name a resource that should exist (API reads, references of a write): on a miss, another
   * process may have committed it a moment ago (a sibling worker or replica), so the mirror catches up once (budgeted
   * by the feed) and looks again — a client that wrote through one worker reads its write through another.
   */
  getFresh(kind: KindName, name: string): Resource | undefined {
    return this.get(kind, name) ?? (this.feed.catchUpOnMiss() ? this.get(kind, name) : undefined);
  }

  mustGet(kind: KindName, name: string): Resource {
    const r = this.getFresh(kind, name);
    if (!r) throw new OcteliumError('NOT_FOUND', `${kind.toLowerCase()} "${name}" not found`);
    return r;
  }

  list(kind: KindName): Resource[] {
    return [...this.#cache.get(kind)!.values()];
  }

  /** Subscribe to changes; returns the unsubscribe function. */
  watch(fn: (c: Change) => void): () => void {
    this.#feed.on('change', fn);
    return () => this.#feed.off('change', fn);
  }

  /**
   * Runs `fn` in one transaction holding the store's write lock (ChangeFeed.transaction: the mirror is brought up
   * to date first); change events are emitted only after it commits.
   */
  transaction<T>(fn: () => T): T {
    if (this.#pending) return fn();
    this.#pending = [];
    try {
      const out = this.feed.transaction(fn);
      const events = this.#pending;
      this.#pending = undefined;
      this.#flushRemote();
      for (const e of events) this.#feed.emit('change', e);
      return out;
    } catch (err) {
      // Roll the in-memory mirror back to the database's state.
      for (const e of (this.#pending ?? []).reverse()) {
        const m = this.#cache.get(e.resource.kind)!;
        if (e.previous) m.set(e.previous.metadata.name, e.previous);
        else m.delete(e.resource.metadata.name);
      }
      this.#pending = undefined;
      this.#flushRemote();
      throw storageError(err);
    }
  }
  #pending: Change[] | undefined;

  #flushRemote(): void {
    const remote = this.#remote;
    this.#remote = [];
    for (const e of remote) this.#feed.emit('change', e);
  }

  #emit(c: Change): void {
    if (this.#pending) this.#pending.push(c);
    else this.#feed.emit('change', c);
  }

  #nextVersion(): string {
    return String(this.#sql.nextVersion());
  }

  /** What a writer whose mirror was behind is told (409): someone else changed it first. */
  #conflict(kind: KindName, name: string, what: string): OcteliumError {
    return new OcteliumError('CONFLICT', `${kind.toLowerCase()} "${name}" was ${what} concurrently (by another request or cluster replica); get it again and retry`);
  }

  create(input: Resource): Resource {
    const kind = input.kind;
    // Checked inside the transaction: only there is the mirror known to be current (see ChangeFeed.transaction).
    return this.transaction(() => {
      if (this.get(kind, input.metadata.name)) throw new OcteliumError('ALREADY_EXISTS', `${kind.toLowerCase()} "${input.metadata.name}" already exists`);
      const now = new Date().toISOString();
      const rv = this.#nextVersion();
      const r: Resource = {
        ...input,
        metadata: { ...input.metadata, uid: randomUUID(), createdAt: now, updatedAt: now, resourceVersion: rv },
      };
      const { changes } = this.#sql.run('INSERT INTO resources (kind, name, uid, resource_version, json) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        [kind, r.metadata.name, r.metadata.uid, Number(rv), JSON.stringify(r)]);
      if (!changes) throw new OcteliumError('ALREADY_EXISTS', `${kind.toLowerCase()} "${input.metadata.name}" already exists (created concurrently by another request or cluster replica)`);
      this.#cache.get(kind)!.set(r.metadata.name, r);
      this.#emit({ type: 'ADDED', resource: r });
      return r;
    });
  }

  /**
   * Replaces the user-controlled part of an existing resource. When `input.metadata.resourceVersion` is
   * set it must equal the stored one (optimistic concurrency, 409 otherwise). Returns `changed: false`
   * (and writes nothing) when nothing the user controls differs.
   */
  update(input: Resource): { resource: Resource; changed: boolean } {
    return this.transaction(() => this.#update(input));
  }

  #update(input: Resource): { resource: Resource; changed: boolean } {
    const current = this.mustGet(input.kind, input.metadata.name);
    const expected = input.metadata.resourceVersion;
    if (expected !== undefined && expected !== current.metadata.resourceVersion) {
      throw new OcteliumError('CONFLICT', `${input.kind.toLowerCase()} "${input.metadata.name}" was modified (resourceVersion ${expected} is stale, current is ${current.metadata.resourceVersion}); get it again and retry`);
    }
    const next: Resource = {
      ...input,
      // Secrets keep their value when an update carries none (get output never includes it).
      ...(current.data && !input.data ? { data: current.data } : {}),
      status: input.status ?? current.status,
      metadata: { ...input.metadata, uid: current.metadata.uid, createdAt: current.metadata.createdAt, updatedAt: current.metadata.updatedAt, resourceVersion: current.metadata.resourceVersion, isSystem: current.metadata.isSystem },
    };
    if (!next.status) delete next.status;
    if (userView(next) === userView(current)) return { resource: current, changed: false };
    const rv = this.#nextVersion();
    next.metadata = { ...next.metadata, updatedAt: new Date().toISOString(), resourceVersion: rv };
    const { changes } = this.#sql.run('UPDATE resources SET resource_version = ?, json = ? WHERE kind = ? AND name = ? AND resource_version = ?',
      [Number(rv), JSON.stringify(next), next.kind, next.metadata.name, Number(current.metadata.resourceVersion)]);
    if (!changes) throw this.#conflict(next.kind, next.metadata.name, 'modified');
    this.#cache.get(next.kind)!.set(next.metadata.name, next);
    this.#emit({ type: 'MODIFIED', resource: next, previous: current });
    return { resource: next, changed: true };
  }

  /** True when applying `input` would change nothing the user controls. */
  isUnchanged(input: Resource): boolean {
    const current = this.get(input.kind, input.metadata.name);
    return Boolean(current) && userView({ ...input, data: input.data ?? current!.data, status: input.status ?? current!.status }) === userView(current!);
  }

  delete(kind: KindName, name: string): Resource {
    return this.transaction(() => {
      const current = this.mustGet(kind, name);
      const { changes } = this.#sql.run('DELETE FROM resources WHERE kind = ? AND name = ? AND resource_version = ?', [kind, name, Number(current.metadata.resourceVersion)]);
      if (!changes) throw this.#conflict(kind, name, 'modified or deleted');
      this.#cache.get(kind)!.delete(name);
      this.#emit({ type: 'DELETED', resource: current, previous: current });
      return current;
    });
  }

  /** References from `r` whose target does not exist (yet). */
  missingRefs(r: Resource): Reference[] {
    return KINDS[r.kind].refs(r).filter((ref) => !this.get(ref.kind, ref.name));
  }

  /** Resources that reference kind/name, with where they reference it. */
  referrers(kind: KindName, name: string): Array<{ resource: Resource; ref: Reference }> {
    const out: Array<{ resource: Resource; ref: Reference }> = [];
    for (const k of this.#cache.keys()) {
      for (const r of this.#cache.get(k)!.values()) {
        for (const ref of KINDS[k].refs(r)) if (ref.kind === kind && ref.name === name) out.push({ resource: r, ref });
      }
    }
    return out;
  }
}
