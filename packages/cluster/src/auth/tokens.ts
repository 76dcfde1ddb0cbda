import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { feedOf, type ChangeFeed, type FeedOp, type StoreSource } from '../store/change-feed.js';

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

/**
 * `crypto.hash`, the one-shot digest (Node 20.12+), when the runtime has it: every gateway request hashes its token,
 * and building a Hash object for it cost about twice as much. Node 20 before 20.12 falls back to createHash.
 */
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: string, enc: 'base64url') => string }).hash;

export function hashToken(token: string): string {
  return oneShotHash ? oneShotHash('sha256', token, 'base64url') : createHash('sha256').update(token).digest('base64url');
}

export function hashesEqual(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** 256-bit random bearer token; the prefix lets secret scanners recognise leaked tokens. */
export function newToken(prefix = 'oct'): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

type TokenRecord = Record<string, string | number | null>;

function rowOf(r: TokenRecord): TokenRow {
  return {
    hash: r.hash as string, type: r.type as TokenType, userName: r.user_name as string,
    credentialName: (r.credential_name as string) ?? undefined, sessionName: (r.session_name as string) ?? undefined,
    clientID: (r.client_id as string) ?? undefined, expiresAt: r.expires_at === null || r.expires_at === undefined ? undefined : Number(r.expires_at),
  };
}

/**
 * Bearer tokens and OAuth2 client secrets, stored only as SHA-256 hashes (tokens are 256-bit random,
 * so a fast hash is enough — no password stretching needed). The whole table is mirrored in memory
 * because the gateway checks a token on every request; tokens issued or revoked by other replicas reach the
 * mirror through the change feed, and a token not (yet) in the mirror makes it catch up once before it is refused
 * (a token issued by a sibling a moment ago works at once).
 */
export class TokenStore {
  readonly #feed: ChangeFeed;
  readonly #byHash = new Map<string, TokenRow>();
  readonly #byClientID = new Map<string, TokenRow>();

  constructor(source: StoreSource) {
    this.#feed = feedOf(source);
    this.#load();
    this.#feed.register('tokens', {
      applyRemote: (op: FeedOp, r) => (op === 'put' ? this.#remember(rowOf(r as TokenRecord)) : this.#forget(r.hash as string)),
      reload: () => {
        this.#byHash.clear();
        this.#byClientID.clear();
        this.#load();
      },
    });
  }

  #load(): void {
    for (const r of this.#feed.sql.all<TokenRecord>('SELECT * FROM tokens')) this.#remember(rowOf(r));
  }

  #remember(row: TokenRow): void {
    this.#byHash.set(row.hash, row);
    if (row.clientID) this.#byClientID.set(row.clientID, row);
  }

  #forget(hash: string): void {
    const row = this.#byHash.get(hash);
    this.#byHash.delete(hash);
    if (row?.clientID) this.#byClientID.delete(row.clientID);
  }

  /** Stores the hash of `secret` (a fresh token when omitted) and returns the plain secret, once. */
  issue(row: Omit<TokenRow, 'hash'>, secret = newToken()): string {
    const full: TokenRow = { ...row, hash: hashToken(secret) };
    this.#feed.transaction(() => this.#feed.sql.run(
      'INSERT INTO tokens (hash, type, user_name, credential_name, session_name, client_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [full.hash, full.type, full.userName, full.credentialName ?? null, full.sessionName ?? null, full.clientID ?? null, full.expiresAt ?? null]));
    this.#remember(full);
    return secret;
  }

  lookup(token: string): TokenRow | undefined {
    const hash = hashToken(token);
    const row = this.#byHash.get(hash) ?? (this.#feed.catchUpOnMiss() ? this.#byHash.get(hash) : undefined);
    if (!row) return undefined;
    if (row.expiresAt !== undefined && row.expiresAt <= Date.now()) return undefined;
    return row;
  }

  lookupClient(clientID: string): TokenRow | undefined {
    return this.#byClientID.get(clientID) ?? (this.#feed.catchUpOnMiss() ? this.#byClientID.get(clientID) : undefined);
  }

  revoke(pred: (r: TokenRow) => boolean): number {
    const doomed = [...this.#byHash.values()].filter(pred);
    if (!doomed.length) return 0;
    this.#feed.transaction(() => {
      for (const row of doomed) this.#feed.sql.run('DELETE FROM tokens WHERE hash = ?', [row.hash]);
    });
    for (const row of doomed) this.#forget(row.hash);
    return doomed.length;
  }
}
