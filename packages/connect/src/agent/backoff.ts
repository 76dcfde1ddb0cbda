export interface BackoffOptions {
  /** Base of the first retry; the first delay is drawn from [initialMs/2, initialMs]. Default 1 s. */
  initialMs?: number;
  /** Cap of the base delay. Default 10 s. */
  maxMs?: number;
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter" (half fixed, half
 * random) so a cluster restart does not get every agent back in the same millisecond, yet no retry is near zero.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialMs ?? 1000;
  const max = opts.maxMs ?? 10_000;
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + random() * (base / 2));
}
