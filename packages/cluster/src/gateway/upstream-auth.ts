import { request } from 'undici';
import { OcteliumError, type HTTPAuth } from '@octelium-ts/shared';
import type { ResourceStore } from '../store/resource-store.js';

/** Refresh an upstream OAuth2 token this long before it expires. */
const REFRESH_MARGIN_MS = 30_000;

interface CachedToken { token: string; expiresAt: number }

/**
 * Upstream credentials from Secrets (design.md §5 "inject upstream credential"). Secrets are read from
 * the in-memory store on each request, so a changed Secret applies to the next request without restart.
 */
export class UpstreamAuth {
  readonly #oauth = new Map<string, Promise<CachedToken>>();

  constructor(private readonly store: ResourceStore) {}

  #secret(name: string): string {
    const s = this.store.get('Secret', name);
    if (!s?.data) throw new OcteliumError('UPSTREAM_FAILED', `upstream credential unavailable: Secret "${name}" does not exist`);
    return s.data.value;
  }

  /** Headers to add to the upstream request (at most one credential kind is configured). */
  async headers(auth: HTTPAuth | undefined): Promise<Record<string, string>> {
    if (!auth) return {};
    if (auth.bearer) {
      const name = auth.bearer.fromSecret ?? auth.bearer.accessToken?.fromSecret;
      return name ? { authorization: `Bearer ${this.#secret(name)}` } : {};
    }
    if (auth.basic) {
      return { authorization: `Basic ${Buffer.from(`${auth.basic.username}:${this.#secret(auth.basic.password.fromSecret)}`).toString('base64')}` };
    }
    if (auth.custom) return { [auth.custom.header.toLowerCase()]: this.#secret(auth.custom.value.fromSecret) };
    if (auth.oauth2ClientCredentials) return { authorization: `Bearer ${await this.#oauth2(auth.oauth2ClientCredentials)}` };
    return {};
  }

  async #oauth2(cfg: NonNullable<HTTPAuth['oauth2ClientCredentials']>): Promise<string> {
    const secret = this.#secret(cfg.clientSecret.fromSecret);
    // Keyed by everything that identifies the grant, so a rotated Secret fetches a fresh token.
    const key = JSON.stringify([cfg.tokenURL, cfg.clientID, cfg.scopes ?? [], secret]);
    const cached = this.#oauth.get(key);
    if (cached) {
      const t = await cached.catch(() => undefined);
      if (t && t.expiresAt - REFRESH_MARGIN_MS > Date.now()) return t.token;
    }
    const p = this.#fetchToken(cfg, secret);
    this.#oauth.set(key, p); // single flight: concurrent requests share one fetch
    p.catch(() => this.#oauth.delete(key));
    return (await p).token;
  }

  async #fetchToken(cfg: NonNullable<HTTPAuth['oauth2ClientCredentials']>, secret: string): Promise<CachedToken> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: cfg.clientID, client_secret: secret });
    if (cfg.scopes?.length) form.set('scope', cfg.scopes.join(' '));
    try {
      const res = await request(cfg.tokenURL, {
        method: 'POST', body: form.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        headersTimeout: 10_000, bodyTimeout: 10_000,
      });
      const body = (await res.body.json()) as { access_token?: string; expires_in?: number };
      if (res.statusCode !== 200 || !body.access_token) throw new Error(`token endpoint answered ${res.statusCode}`);
      return { token: body.access_token, expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000 };
    } catch (e) {
      throw new OcteliumError('UPSTREAM_FAILED', `upstream OAuth2 token request failed: ${(e as Error).message}`);
    }
  }
}
