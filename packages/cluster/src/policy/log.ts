/**
 * Warnings that can repeat on every request (a missing Policy, a rule that always errors) are logged once
 * per key; the set is bounded so a stream of distinct keys cannot grow memory without limit.
 */
const MAX_KEYS = 1000;
const seen = new Set<string>();

export function warnOnce(key: string, message: string): void {
  if (seen.has(key)) return;
  if (seen.size >= MAX_KEYS) seen.clear();
  seen.add(key);
  console.warn(message);
}
