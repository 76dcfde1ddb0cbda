import { createHash } from 'node:crypto';
import type { Sql } from '../store/sql.js';

const PREFIX = 'replay:';
/** Expiry stored zero-padded so that text comparison in SQL orders like numbers on both engines. */
const pad = (ms: number) => String(Math.floor(ms)).padStart(15, '0');
const SWEEP_EVERY_MS = 60_000;

/**
 * One-time identifiers seen recently (a jwt-bearer assertion's `jti`, a SAML assertion's `ID`), kept until the
 * token they belong to expires. Kept in the store's `meta` table rather than in memory, so that every replica on a
 * shared store refuses a replay the others accepted; the insert is atomic (ON CONFLICT DO NOTHING), so two
 * replicas presenting the same identifier at once cannot both win. Only a hash of the identifier is stored.
 */
export class ReplayCache {
  #lastSweep = 0;

  constructor(private readonly sql: Sql) {}

  /** Records `id` (in `scope`) until `expiresAtMs`; false when it was already recorded and has not expired. */
  firstUse(scope: string, id: string, expiresAtMs: number): boolean {
    const now = Date.now();
    if (now - this.#lastSweep > SWEEP_EVERY_MS) {
      this.#lastSweep = now;
      this.sql.run("DELETE FROM meta WHERE key LIKE 'replay:%' AND value < ?", [pad(now)]);
    }
    const key = PREFIX + createHash('sha256').update(`${scope}\0${id}`).digest('base64url');
    // An expired row still present (not swept yet) must not count as a use.
    this.sql.run('DELETE FROM meta WHERE key = ? AND value < ?', [key, pad(now)]);
    return this.sql.run('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING', [key, pad(Math.max(expiresAtMs, now + 1000))]).changes === 1;
  }
}
