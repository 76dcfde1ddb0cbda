import { createHash, randomBytes } from 'node:crypto';
import type { Sql } from '../store/sql.js';
import { hashToken } from '../auth/tokens.js';
import { OAuthError } from './errors.js';

/** A validated authorization request waiting for the user's decision on the consent page. */
export interface PendingAuthorization {
  id: string;
  /** Double-submit CSRF value, also set as a cookie on the consent page. */
  csrf: string;
  clientId: string;
  clientName: string;
  redirectUri: string;
  state?: string;
  scope?: string;
  resource?: string;
  codeChallenge: string;
  nonce?: string;
  expiresAt: number;
  /** Failed login attempts on this request; the request is dropped after a few. */
  failures: number;
  /** Source address (sourceKey) that opened the request: the unit of the per-address cap. */
  source: string;
}

/** What an authorization code stands for; the code itself is stored only as a hash. */
export interface CodeGrant {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  scope?: string;
  resource?: string;
  nonce?: string;
  userName: string;
  /** The auth token's Credential that consented; absent when the person consented as their browser Session. */
  credentialName?: string;
  /** How the person signed in (the browser Session's `status.authentication`, an IdP login), kept on the grant. */
  authentication?: Record<string, unknown>;
  /** Absolute end of the grant (the auth token's expiry bounds it). */
  grantExpiresAt: number;
  authTime: number;
  expiresAt: number;
  /** Set once redeemed: a second redemption revokes the grant's Session (OAuth 2.1 §4.1.3). */
  sessionName?: string;
  used: boolean;
}

const PENDING_TTL_MS = 10 * 60_000;
const CODE_TTL_MS = 60_000;
export const DEFAULT_PENDING_PER_ADDRESS = 50;
/** Backstop for the whole process; the per-address cap is what keeps one client from filling it. */
export const DEFAULT_MAX_PENDING = 10_000;

/**
 * Short-lived authorization state, in the cluster store so that every replica behind a load balancer sees it (the
 * authorization request may reach one replica, the consent form a second, the token request a third): pending
 * consent (10 min) and authorization codes (60 s, single use, kept as hashes). A redemption is one conditional
 * UPDATE, so a code is redeemed once even when two replicas receive it at the same moment.
 *
 * Pending requests are counted per source address: past `perAddress`, an address's own oldest request is
 * dropped, so a flood from one address never evicts anybody else's consent page. When the process-wide
 * backstop is full, new requests are refused instead (503), again without evicting others.
 */
export class AuthorizationState {
  constructor(private readonly sql: Sql, private readonly perAddress = DEFAULT_PENDING_PER_ADDRESS, private readonly maxPending = DEFAULT_MAX_PENDING) {}

  addPending(p: Omit<PendingAuthorization, 'id' | 'csrf' | 'expiresAt' | 'failures' | 'source'>, source: string): PendingAuthorization {
    const full: PendingAuthorization = { ...p, id: randomBytes(24).toString('base64url'), csrf: randomBytes(24).toString('base64url'), expiresAt: Date.now() + PENDING_TTL_MS, failures: 0, source };
    // One transaction: the caps are checked and the request stored under the store's write lock, so replicas
    // counting at the same time cannot both slip past them.
    this.sql.transaction(() => {
      const now = Date.now();
      this.sql.run('DELETE FROM oauth_pending WHERE expires_at <= ?', [now]);
      const mine = this.sql.all<{ id: string }>('SELECT id FROM oauth_pending WHERE source = ? ORDER BY seq', [source]);
      for (let i = 0; mine.length - i >= this.perAddress; i++) this.sql.run('DELETE FROM oauth_pending WHERE id = ?', [mine[i].id]);
      if (Number(this.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM oauth_pending')!.n) >= this.maxPending) {
        throw new OAuthError('temporarily_unavailable', 'too many sign-in requests are pending; try again in a few minutes', 503);
      }
      const { failures: _f, ...stored } = full;
      this.sql.run('INSERT INTO oauth_pending (id, source, json, failures, created_at, expires_at) VALUES (?, ?, ?, 0, ?, ?)', [full.id, source, JSON.stringify(stored), now, full.expiresAt]);
    });
    return full;
  }

  getPending(id: string): PendingAuthorization | undefined {
    const r = this.sql.get<{ json: string; failures: number }>('SELECT json, failures FROM oauth_pending WHERE id = ? AND expires_at > ?', [id, Date.now()]);
    return r ? { ...(JSON.parse(r.json) as PendingAuthorization), failures: Number(r.failures) } : undefined;
  }

  /** Removes a pending request; true for the one caller that removed it (the consent it stands for is used once). */
  dropPending(id: string): boolean {
    return this.sql.run('DELETE FROM oauth_pending WHERE id = ?', [id]).changes === 1;
  }

  /** Counts a failed sign-in on the consent page; returns the failures so far. */
  recordFailure(id: string): number {
    return Number(this.sql.get<{ failures: number }>('UPDATE oauth_pending SET failures = failures + 1 WHERE id = ? RETURNING failures', [id])?.failures ?? Infinity);
  }

  issueCode(g: Omit<CodeGrant, 'expiresAt' | 'used'>): string {
    const code = randomBytes(32).toString('base64url');
    const expiresAt = Date.now() + CODE_TTL_MS;
    this.sql.run('DELETE FROM oauth_codes WHERE expires_at <= ?', [Date.now()]);
    this.sql.run('INSERT INTO oauth_codes (hash, json, used, expires_at) VALUES (?, ?, 0, ?)', [hashToken(code), JSON.stringify({ ...g, expiresAt }), expiresAt]);
    return code;
  }

  /** The grant behind a code, expired or not yet swept, including already-used ones (the caller decides). */
  code(code: string): CodeGrant | undefined {
    const r = this.sql.get<{ json: string; used: number; session_name: string | null }>('SELECT json, used, session_name FROM oauth_codes WHERE hash = ? AND expires_at > ?', [hashToken(code), Date.now()]);
    if (!r) return undefined;
    return { ...(JSON.parse(r.json) as CodeGrant), used: Number(r.used) === 1, ...(r.session_name ? { sessionName: r.session_name } : {}) };
  }

  /** Marks a code used; true for exactly one caller cluster-wide (OAuth 2.1 §4.1.3: codes are single use). */
  redeemCode(code: string): boolean {
    return this.sql.run('UPDATE oauth_codes SET used = 1 WHERE hash = ? AND used = 0', [hashToken(code)]).changes === 1;
  }

  /** The Session a redeemed code created: a second redemption revokes it. */
  setCodeSession(code: string, sessionName: string): void {
    this.sql.run('UPDATE oauth_codes SET session_name = ? WHERE hash = ?', [sessionName, hashToken(code)]);
  }
}

/** PKCE S256 (RFC 7636 §4.6): BASE64URL(SHA256(verifier)) == challenge; the verifier's syntax is checked too. */
export function pkceS256Matches(verifier: string, challenge: string): boolean {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) return false;
  return createHash('sha256').update(verifier).digest('base64url') === challenge;
}

export interface RefreshGrant { clientId: string; sessionName: string; scope?: string; resource?: string; expiresAt: number; rotated: boolean }

/**
 * Refresh tokens (hashed, in the cluster DB so they survive restarts). Rotated on every use (OAuth 2.1 §4.3.1
 * for public clients); presenting a rotated one again means it leaked, and the caller revokes the grant.
 */
export class RefreshTokens {
  // The table is created by the store's migrations; the store is shared, so a rotation on one replica is seen by all.
  constructor(private readonly sql: Sql) {
    sql.run('DELETE FROM oauth_refresh_tokens WHERE expires_at <= ?', [Date.now()]);
  }

  issue(g: Omit<RefreshGrant, 'rotated'>): string {
    const token = `ocr_${randomBytes(32).toString('base64url')}`;
    this.sql.run('INSERT INTO oauth_refresh_tokens (hash, client_id, session_name, scope, resource, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      [hashToken(token), g.clientId, g.sessionName, g.scope ?? null, g.resource ?? null, g.expiresAt]);
    return token;
  }

  lookup(token: string): RefreshGrant | undefined {
    const r = this.sql.get<{ client_id: string; session_name: string; scope: string | null; resource: string | null; expires_at: number; rotated: number }>(
      'SELECT * FROM oauth_refresh_tokens WHERE hash = ?', [hashToken(token)]);
    if (!r || Number(r.expires_at) <= Date.now()) return undefined;
    return { clientId: r.client_id, sessionName: r.session_name, scope: r.scope ?? undefined, resource: r.resource ?? undefined, expiresAt: Number(r.expires_at), rotated: Number(r.rotated) === 1 };
  }

  /**
   * Marks a refresh token used; false when it already was. Atomic in the store, so two replicas redeeming the same
   * token at once cannot both succeed: the loser sees a rotated token (reuse), as a replay would.
   */
  markRotated(token: string): boolean {
    return this.sql.run('UPDATE oauth_refresh_tokens SET rotated = 1 WHERE hash = ? AND rotated = 0', [hashToken(token)]).changes === 1;
  }

  revokeSession(sessionName: string): void {
    this.sql.run('DELETE FROM oauth_refresh_tokens WHERE session_name = ?', [sessionName]);
  }

  /** RFC 7009: revoking a refresh token ends its whole grant. Returns the Session to delete, if any. */
  revoke(token: string, clientId: string): string | undefined {
    const g = this.lookup(token);
    if (!g || g.clientId !== clientId) return undefined;
    this.revokeSession(g.sessionName);
    return g.sessionName;
  }
}
