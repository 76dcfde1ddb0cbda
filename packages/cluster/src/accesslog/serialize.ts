import type { AccessLog } from '@octelium-ts/shared';

/**
 * The last log serialized and its JSON. Redaction's fast path, the store's row and the OTLP exporter ask for the
 * same log's JSON one after another within one `record()` call, so one slot is enough to serialize each log once.
 * It was a WeakMap: every log became an ephemeron entry the scavenger had to process, and growing its table
 * allocated ~1.3 KB per request. A miss only costs a second `JSON.stringify`, never a wrong answer, since logs are
 * treated as immutable once recorded (a redacted copy is a new object).
 */
let lastLog: AccessLog | undefined;
let lastJson = '';

/** JSON of an AccessLog, computed once for consecutive calls with the same log object. */
export function serializeLog(log: AccessLog): string {
  if (log !== lastLog) {
    lastJson = JSON.stringify(log);
    lastLog = log;
  }
  return lastJson;
}
