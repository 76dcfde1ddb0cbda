/**
 * A Map for remembering values derived from input that repeats (parsed URLs and targets, compiled expressions,
 * verified tokens): when it holds `max` entries, adding a new key empties it first. Hostile variety then costs a
 * recomputation, never memory, and the common case — the same few keys over and over — stays one lookup. (Starting
 * over rather than evicting one entry: no bookkeeping per hit, and the keys that matter come back at once.)
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.size >= this.max && !this.has(key)) this.clear();
    return super.set(key, value);
  }
}
