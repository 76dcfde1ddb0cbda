/**
 * A tiny identity-keyed cache of the last few entries, strongly held. Used instead of a WeakMap for
 * per-request state: a WeakMap keyed by a fresh object per request made the GC's ephemeron work cost
 * more (~4 µs per request) than everything else in a decision. A request's facts are evaluated in a burst
 * (authorize, dynamic config, plugin conditions), so a few slots cover interleaved requests; a miss only
 * costs a rebuild. Few slots also bound the memory held after the requests are gone.
 */
export class RecentCache<K extends object, V> {
  readonly #keys: Array<K | undefined>;
  readonly #values: Array<V | undefined>;
  #next = 0;

  constructor(size: number) {
    this.#keys = new Array<K | undefined>(size).fill(undefined);
    this.#values = new Array<V | undefined>(size).fill(undefined);
  }

  get(key: K): V | undefined {
    for (let i = 0; i < this.#keys.length; i++) if (this.#keys[i] === key) return this.#values[i];
    return undefined;
  }

  set(key: K, value: V): void {
    this.#keys[this.#next] = key;
    this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.#keys.length;
  }
}
