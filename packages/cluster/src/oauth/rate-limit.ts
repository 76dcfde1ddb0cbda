/**
 * A token bucket per key (a source address): `perMinute` requests per minute on average, bursts of up to
 * `perMinute`. Memory is bounded: past `maxKeys` buckets, full ones (which carry no state) are dropped, then
 * the oldest. Dropping a bucket only ever forgives, so the bound cannot lock anyone out.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #perMs: number;

  constructor(private readonly perMinute: number, private readonly maxKeys = 100_000) {
    this.#perMs = perMinute / 60_000;
  }

  /** Takes one token for `key`: 0 when allowed, else the whole seconds until the next token (for Retry-After). */
  take(key: string, now = Date.now()): number {
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxKeys) this.#prune(now);
      b = { tokens: this.perMinute, at: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * this.#perMs);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000));
  }

  #prune(now: number): void {
    for (const [k, b] of this.#buckets) if (b.tokens + (now - b.at) * this.#perMs >= this.perMinute) this.#buckets.delete(k);
    for (const k of this.#buckets.keys()) {
      if (this.#buckets.size < this.maxKeys) break;
      this.#buckets.delete(k);
    }
  }
}
