import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { KINDS, OcteliumError, type KindName, type Reference, type Resource } from '@octelium-ts/shared';
import { storageError, type DB } from './db.js';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface Change { type: ChangeType; resource: Resource; previous?: Resource }

/** Fields a user controls; everything else in metadata is server-set. Used to decide `unchanged`. */
function userView(r: Resource): string {
  const { name, labels, annotations, description, displayName, tags, picURL } = r.metadata;
  return JSON.stringify([name, labels ?? null, annotations ?? null, description ?? null, displayName ?? null, tags ?? null, picURL ?? null, r.spec, r.data ?? null, r.status ?? null]);
}

/**
 * All resources, persisted in SQLite and mirrored in memory. Reads never touch the database (the
 * gateway reads on every request); every write goes to SQLite first, then to memory, then to the
 * change feed. resourceVersion is one cluster-wide counter, so it also orders the change feed.
 */
export class ResourceStore {
  readonly #db: DB;
  readonly #cache = new Map<KindName, Map<string, Resource>>();
  readonly #feed = new EventEmitter();
  #version = 0;
  #stmts;

  constructor(db: DB) {
    this.#db = db;
    this.#feed.setMaxListeners(0);
    this.#stmts = {
      insert: db.prepare('INSERT INTO resources (kind, name, uid, resource_version, json) VALUES (?, ?, ?, ?, ?)'),
      update: db.prepare('UPDATE resources SET resource_version = ?, json = ? WHERE kind = ? AND name = ?'),
      delete: db.prepare('DELETE FROM resources WHERE kind = ? AND name = ?'),
      setVersion: db.prepare("INSERT INTO meta (key, value) VALUES ('resourceVersion', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
    };
    for (const k of Object.keys(KINDS) as KindName[]) this.#cache.set(k, new Map());
    for (const row of db.prepare('SELECT json FROM resources').all() as Array<{ json: string }>) {
      const r = JSON.parse(row.json) as Resource;
      this.#cache.get(r.kind)?.set(r.metadata.name, r);
    }
    const v = db.prepare("SELECT value FROM meta WHERE key = 'resourceVersion'").get() as { value: string } | undefined;
    this.#version = v ? Number(v.value) : 0;
  }

  get(kind: KindName, name: string): Resource | undefined {
    return this.#cache.get(kind)!.get(name);
  }

  mustGet(kind: KindName, name: string): Resource {
    const r = this.get(kind, name);
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

  /** Runs `fn` in one SQLite transaction; change events are emitted only after it commits. */
  transaction<T>(fn: () => T): T {
    if (this.#pending) return fn();
    this.#pending = [];
    const snapshot = this.#version;
    try {
      const out = this.#db.transaction(fn)();
      const events = this.#pending;
      this.#pending = undefined;
      for (const e of events) this.#feed.emit('change', e);
      return out;
    } catch (err) {
      // Roll the in-memory mirror back to the database's state.
      for (const e of (this.#pending ?? []).reverse()) {
        const m = this.#cache.get(e.resource.kind)!;
        if (e.previous) m.set(e.previous.metadata.name, e.previous);
        else m.delete(e.resource.metadata.name);
      }
      this.#version = snapshot;
      this.#pending = undefined;
      throw storageError(err);
    }
  }
  #pending: Change[] | undefined;

  #emit(c: Change): void {
    if (this.#pending) this.#pending.push(c);
    else this.#feed.emit('change', c);
  }

  #nextVersion(): string {
    this.#version++;
    this.#stmts.setVersion.run(String(this.#version));
    return String(this.#version);
  }

  create(input: Resource): Resource {
    const kind = input.kind;
    if (this.get(kind, input.metadata.name)) throw new OcteliumError('ALREADY_EXISTS', `${kind.toLowerCase()} "${input.metadata.name}" already exists`);
    return this.transaction(() => {
      const now = new Date().toISOString();
      const rv = this.#nextVersion();
      const r: Resource = {
        ...input,
        metadata: { ...input.metadata, uid: randomUUID(), createdAt: now, updatedAt: now, resourceVersion: rv },
      };
      this.#stmts.insert.run(kind, r.metadata.name, r.metadata.uid, Number(rv), JSON.stringify(r));
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
    return this.transaction(() => {
      const rv = this.#nextVersion();
      next.metadata = { ...next.metadata, updatedAt: new Date().toISOString(), resourceVersion: rv };
      this.#stmts.update.run(Number(rv), JSON.stringify(next), next.kind, next.metadata.name);
      this.#cache.get(next.kind)!.set(next.metadata.name, next);
      this.#emit({ type: 'MODIFIED', resource: next, previous: current });
      return { resource: next, changed: true };
    });
  }

  /** True when applying `input` would change nothing the user controls. */
  isUnchanged(input: Resource): boolean {
    const current = this.get(input.kind, input.metadata.name);
    return Boolean(current) && userView({ ...input, data: input.data ?? current!.data, status: input.status ?? current!.status }) === userView(current!);
  }

  delete(kind: KindName, name: string): Resource {
    const current = this.mustGet(kind, name);
    return this.transaction(() => {
      this.#stmts.delete.run(kind, name);
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
