/**
 * A byte budget for what tunnel streams hold in memory: data received but not yet read by its consumer, data accepted
 * for sending but not yet sent, and stream heads. Each connection has one, under one shared by the whole process
 * (the hub's cluster-wide budget), so neither one peer nor all of them together can make this side buffer without
 * bound: a charge that does not fit in every level is refused, and the stream asking is reset (OVER_BUDGET).
 */
export class TunnelBudget {
  readonly limit: number;
  readonly #parent?: TunnelBudget;
  #used = 0;

  constructor(limit: number, parent?: TunnelBudget) {
    if (!(limit > 0)) throw new RangeError(`a tunnel budget must be positive (got ${limit})`);
    this.limit = limit;
    this.#parent = parent;
  }

  get used(): number {
    return this.#used;
  }

  /** Whether `n` more bytes fit here and in every parent. */
  hasRoom(n: number): boolean {
    return this.#used + n <= this.limit && (this.#parent?.hasRoom(n) ?? true);
  }

  /** Charges `n` bytes to this budget and its parents, or nothing when they do not fit everywhere. */
  tryCharge(n: number): boolean {
    if (!this.hasRoom(n)) return false;
    this.#charge(n);
    return true;
  }

  release(n: number): void {
    this.#charge(-n);
  }

  #charge(n: number): void {
    this.#used += n;
    if (this.#parent) this.#parent.#charge(n);
  }
}

/** Default budget of one tunnel connection (either side). */
export const DEFAULT_CONNECTION_BUFFER_BYTES = 256 * 1024 * 1024;
/** Default budget of all connections of one cluster process together. */
export const DEFAULT_TOTAL_BUFFER_BYTES = 1024 * 1024 * 1024;
