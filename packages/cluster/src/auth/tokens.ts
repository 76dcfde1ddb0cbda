import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { DB } from '../store/db.js';

export type TokenType = 'auth' | 'access' | 'session' | 'oauth2-client';

export interface TokenRow {
  hash: string;
  type: TokenType;
  userName: string;
  credentialName?: string;
  sessionName?: string;
  clientID?: string;
  /** ms since epoch; undefined = no expiry */
  expiresAt?: number;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** 256-bit random bearer token; the prefix lets secret scanners recognise leaked tokens. */
export function newToken(prefix = 'oct'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

/**
 * Bearer tokens and OAuth2 client secrets, stored only as SHA-256 hashes (tokens are 256-bit random,
 * so a fast hash is enough — no password stretching needed). The whole table is mirrored in memory
 * because the gateway checks a token on every request.
 */
export class TokenStore {
  readonly #db: DB;
  readonly #byHash = new Map<string, TokenRow>();
  readonly #byClientID = new Map<string, TokenRow>();

  constructor(db: DB) {
    this.#db = db;
    for (const r of db.prepare('SELECT * FROM tokens').all() as Array<Record<string, string | number | null>>) {
      this.#remember({
        hash: r.hash as string, type: r.type as TokenType, userName: r.user_name as string,
        credentialName: (r.credential_name as string) ?? undefined, sessionName: (r.session_name as string) ?? undefined,
        clientID: (r.client_id as string) ?? undefined, expiresAt: (r.expires_at as number) ?? undefined,
      });
    }
  }

  #remember(row: TokenRow): void {
    this.#byHash.set(row.hash, row);
    if (row.clientID) this.#byClientID.set(row.clientID, row);
  }

  /** Stores the hash of `secret` (a fresh token when omitted) and returns the plain secret, once. */
  issue(row: Omit<TokenRow, 'hash'>, secret = newToken()): string {
    const full: TokenRow = { ...row, hash: hashToken(secret) };
    this.#db
      .prepare('INSERT INTO tokens (hash, type, user_name, credential_name, session_name, client_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(full.hash, full.type, full.userName, full.credentialName ?? null, full.sessionName ?? null, full.clientID ?? null, full.expiresAt ?? null);
    this.#remember(full);
    return secret;
  }

  lookup(token: string): TokenRow | undefined {
    const row = this.#byHash.get(hashToken(token));
    if (!row) return undefined;
    if (row.expiresAt !== undefined && row.expiresAt <= Date.now()) return undefined;
    return row;
  }

  lookupClient(clientID: string): TokenRow | undefined {
    return this.#byClientID.get(clientID);
  }

  revoke(pred: (r: TokenRow) => boolean): number {
    let n = 0;
    const del = this.#db.prepare('DELETE FROM tokens WHERE hash = ?');
    for (const row of [...this.#byHash.values()]) {
      if (!pred(row)) continue;
      del.run(row.hash);
      this.#byHash.delete(row.hash);
      if (row.clientID) this.#byClientID.delete(row.clientID);
      n++;
    }
    return n;
  }
}
