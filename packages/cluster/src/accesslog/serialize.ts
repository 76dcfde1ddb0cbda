import type { AccessLog } from '@octelium-ts/shared';

const cache = new WeakMap<AccessLog, string>();

/**
 * JSON of an AccessLog, computed once per log object: redaction's fast path, the store's writer and the
 * OTLP exporter all need the same string, and serializing it three times showed up in profiles.
 * Logs are treated as immutable once recorded.
 */
export function serializeLog(log: AccessLog): string {
  let s = cache.get(log);
  if (s === undefined) {
    s = JSON.stringify(log);
    cache.set(log, s);
  }
  return s;
}
