import { randomBytes } from 'node:crypto';
import type { Sql } from '../store/sql.js';
import { hashesEqual, hashToken } from '../auth/tokens.js';
import { CimdResolver, normalizeClientMetadata, type ClientMetadata } from './cimd.js';
import { invalidClient, invalidClientMetadata, OAuthError } from './errors.js';

export interface RegisteredClient extends ClientMetadata {
  /** How the client was registered: RFC 7591 (DCR) or a Client ID Metadata Document. */
  kind: 'dcr' | 'cimd';
  client_id_issued_at?: number;
}

/** More registrations than this (open, unauthenticated DCR) is treated as abuse, not growth. */
const MAX_CLIENTS = 10_000;
const AUTH_METHODS = new Set(['none', 'client_secret_basic', 'client_secret_post']);

export interface ClientRegistryLimits {
  /** A registered client that completed no authorization within this long is deleted. */
  unusedClientTtlMs: number;
  /** The stored metadata of one client (its JSON) may be at most this many bytes; past it, 400. */
  maxMetadataBytes: number;
}

export const DEFAULT_CLIENT_LIMITS: ClientRegistryLimits = { unusedClientTtlMs: 24 * 3600_000, maxMetadataBytes: 8 * 1024 };

/**
 * OAuth clients of the built-in authorization server: dynamically registered ones (RFC 7591, persisted in the
 * cluster DB, secrets stored as hashes) and URL client ids resolved through CIMD. OAUTH2 Credentials
 * (client_credentials) are a separate kind of client, kept by IdentityService.
 *
 * Registration is open, so what one registration may cost is bounded: its stored size, and its lifetime until
 * it is first used — a client that never completes an authorization is deleted after `unusedClientTtlMs`
 * (swept on start and on every registration, so stale ones never count against the cap).
 */
export class ClientRegistry {
  // The table is created by the store's migrations (store/db.ts, store/postgres/migrations.ts).
  constructor(private readonly sql: Sql, readonly cimd: CimdResolver, private readonly limits: ClientRegistryLimits = DEFAULT_CLIENT_LIMITS) {
    this.sweepUnused();
  }

  /** Deletes registrations that were never used within their grace period; returns how many. */
  sweepUnused(now = Date.now()): number {
    return this.sql.run('DELETE FROM oauth_clients WHERE used_at IS NULL AND created_at <= ?', [now - this.limits.unusedClientTtlMs]).changes;
  }

  /** A registered client completed an authorization (redeemed a code): it is kept from now on. */
  markUsed(clientId: string): void {
    this.sql.run('UPDATE oauth_clients SET used_at = ? WHERE client_id = ? AND used_at IS NULL', [Date.now(), clientId]);
  }

  /** RFC 7591 §3: validates the metadata and returns the registration response (secret shown once). */
  register(body: Record<string, unknown> | undefined): Record<string, unknown> {
    if (!body) throw invalidClientMetadata('the registration request must be a JSON object');
    const method = (body.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic'; // RFC 7591 §2 default
    if (!AUTH_METHODS.has(method)) throw invalidClientMetadata(`token_endpoint_auth_method "${method}" is not supported (none, client_secret_basic, client_secret_post)`);
    const meta = normalizeClientMetadata(body);
    this.sweepUnused();
    if (Number(this.sql.get<{ n: number }>('SELECT COUNT(*) AS n FROM oauth_clients')!.n) >= MAX_CLIENTS) throw new OAuthError('temporarily_unavailable', 'too many registered clients', 503);
    const clientId = `mcp_${randomBytes(16).toString('base64url')}`;
    const issuedAt = Math.floor(Date.now() / 1000);
    const secret = method === 'none' ? undefined : `ocs_${randomBytes(32).toString('base64url')}`;
    const client: RegisteredClient = { ...meta, client_id: clientId, token_endpoint_auth_method: method, kind: 'dcr', client_id_issued_at: issuedAt };
    const stored = JSON.stringify(client);
    const size = Buffer.byteLength(stored);
    if (size > this.limits.maxMetadataBytes) throw invalidClientMetadata(`client metadata is ${size} bytes; at most ${this.limits.maxMetadataBytes} are stored`);
    this.sql.run('INSERT INTO oauth_clients (client_id, metadata, secret_hash, created_at) VALUES (?, ?, ?, ?)', [clientId, stored, secret ? hashToken(secret) : null, Date.now()]);
    const { kind: _kind, ...wire } = client;
    return { ...wire, ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}) };
  }

  #row(clientId: string): { metadata: string; secret_hash: string | null } | undefined {
    return this.sql.get('SELECT metadata, secret_hash FROM oauth_clients WHERE client_id = ?', [clientId]);
  }

  /** A registered client, or a CIMD client fetched (and cached) from its URL; throws invalid_client otherwise. */
  async get(clientId: string): Promise<RegisteredClient> {
    if (CimdResolver.isUrlClientId(clientId)) return { ...(await this.cimd.resolve(clientId)), kind: 'cimd' };
    const row = this.#row(clientId);
    if (!row) throw invalidClient(`unknown client_id "${clientId.slice(0, 100)}"`);
    return JSON.parse(row.metadata) as RegisteredClient;
  }

  /**
   * Token-endpoint client authentication (OAuth 2.1 §2.4): public clients (`none`) present only their id;
   * confidential ones their secret, by the registered method.
   */
  async authenticate(clientId: string, secret: string | undefined, via: 'basic' | 'post' | 'none'): Promise<RegisteredClient> {
    const client = await this.get(clientId);
    const method = client.token_endpoint_auth_method;
    if (method === 'none') {
      if (secret) throw invalidClient('this client is public (token_endpoint_auth_method "none") and has no secret');
      return client;
    }
    const row = this.#row(clientId);
    const expected = method === 'client_secret_basic' ? 'basic' : 'post';
    if (!secret || !row?.secret_hash || via !== expected || !hashesEqual(row.secret_hash, hashToken(secret))) {
      throw invalidClient(`client authentication failed (method ${method})`);
    }
    return client;
  }
}
