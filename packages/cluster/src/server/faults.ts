/**
 * Unexpected exceptions caught at an entry point (listener, upgrade, gateway, process). The policy
 * (docs/security.md): every entry point answers its own request with a 5xx, the error is logged with the
 * request id and counted (`octelium_unexpected_errors_total` in /metrics), and the process keeps serving —
 * one bad request must never end the cluster for everyone else.
 */
export class Faults {
  readonly #counts = new Map<string, number>();

  record(where: string, err: unknown, requestId?: string): void {
    this.#counts.set(where, (this.#counts.get(where) ?? 0) + 1);
    console.error(`unexpected error in ${where}${requestId ? ` (request ${requestId})` : ''}:`, err);
  }

  counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }
}
