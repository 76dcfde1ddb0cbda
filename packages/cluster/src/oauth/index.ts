import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IdentityService } from '../auth/identity.js';
import type { IdentityProviders } from '../idp/registry.js';
import { ReplayCache } from '../idp/replay-cache.js';
import type { BrowserAuth } from '../web/browser-auth.js';
import type { Sql } from '../store/sql.js';
import type { ResourceStore } from '../store/resource-store.js';
import { authorizeEndpoint } from './authorize-endpoint.js';
import { CimdResolver } from './cimd.js';
import { ClientRegistry, DEFAULT_CLIENT_LIMITS } from './clients.js';
import type { AsDeps } from './deps.js';
import { asOAuthError, invalidRequest, OAuthError } from './errors.js';
import { RateLimiter } from './rate-limit.js';
import { registrationEndpoint } from './register-endpoint.js';
import { tryDecodeComponent } from '../api/uri-component.js';
import { AuthorizationState, DEFAULT_MAX_PENDING, DEFAULT_PENDING_PER_ADDRESS, RefreshTokens } from './grants.js';
import { OPEN_CORS, sendJson } from './http.js';
import type { KeyRing } from './keyring.js';
import { authorizationServerMetadata } from './metadata.js';
import { ResourceIndicators } from './resource-indicators.js';
import { revocationEndpoint, tokenEndpoint } from './token-endpoint.js';

export { ResourceIndicators, hostnameOfHost, isLoopbackHostname } from './resource-indicators.js';
export { DEFAULT_MCP_SCOPE } from './metadata.js';

/** Limits on what unauthenticated clients can make the authorization server hold (docs/mcp.md §3.4). */
export interface OAuthLimits {
  /** Dynamic Client Registrations per source address per minute (token bucket, bursts of as many); default 20. */
  registrationsPerMinute?: number;
  /** A registered client that completed no authorization within this long is deleted; default 24 h. */
  unusedClientTtlMs?: number;
  /** Stored metadata of one registered client, in bytes; past it, 400 invalid_client_metadata. Default 8 KiB. */
  maxClientMetadataBytes?: number;
  /** Pending consent requests per source address; past it, that address's oldest is dropped. Default 50. */
  pendingPerAddress?: number;
  /** Pending consent requests in the process; past it, new ones are refused (503), none evicted. Default 10 000. */
  maxPending?: number;
}

/** What a cluster configures of its authorization server (ClusterOptions.oauth). */
export interface AuthorizationServerConfig {
  /**
   * DEV/TEST ONLY: fetch Client ID Metadata Documents over plain http from loopback (`http://127.0.0.1:…/client.json`).
   * Never enable in production: it turns the SSRF guard's loopback block off. Also `OCTELIUM_DEV_CIMD_ALLOW_LOOPBACK_HTTP=1`.
   */
  cimdAllowLoopbackHttp?: boolean;
  limits?: OAuthLimits;
}

export const DEFAULT_REGISTRATIONS_PER_MINUTE = 20;

export interface AuthorizationServerOptions extends AuthorizationServerConfig {
  identity: IdentityService;
  keys: KeyRing;
  store: ResourceStore;
  /** The cluster store's statements (OAuth clients and refresh tokens live there, shared by every replica). */
  sql: Sql;
  issuer: () => string;
  /** RFC 9728 documents for the no-DNS Service form (`/.well-known/oauth-protected-resource/svc/<svc>/…`); false = not ours. */
  protectedResourceMetadata?: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean;
  /** Human identity (web/index.ts): IdP sign-in on the consent page, jwt-bearer assertions at the token endpoint. */
  human?: { idps: IdentityProviders; browser: BrowserAuth };
}

export interface AuthorizationServer {
  /** Everything under `/oauth2/` and `/.well-known/` on the cluster host. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  resources: ResourceIndicators;
  close(): Promise<void>;
}

/**
 * The cluster's built-in OAuth 2.1 authorization server (docs/mcp.md): RFC 8414 + OIDC discovery, JWKS,
 * authorization code + PKCE S256 with a consent page, client_credentials, refresh tokens with rotation,
 * DCR (RFC 7591), Client ID Metadata Documents, revocation (RFC 7009). Hand-written over jose.
 */
export function createAuthorizationServer(opts: AuthorizationServerOptions): AuthorizationServer {
  const cimd = new CimdResolver(opts.cimdAllowLoopbackHttp ?? false);
  const resources = new ResourceIndicators(opts.store, opts.issuer);
  const limits = opts.limits ?? {};
  const deps: AsDeps = {
    identity: opts.identity, keys: opts.keys, store: opts.store, issuer: opts.issuer,
    clients: new ClientRegistry(opts.sql, cimd, {
      unusedClientTtlMs: limits.unusedClientTtlMs ?? DEFAULT_CLIENT_LIMITS.unusedClientTtlMs,
      maxMetadataBytes: limits.maxClientMetadataBytes ?? DEFAULT_CLIENT_LIMITS.maxMetadataBytes,
    }),
    state: new AuthorizationState(opts.sql, limits.pendingPerAddress ?? DEFAULT_PENDING_PER_ADDRESS, limits.maxPending ?? DEFAULT_MAX_PENDING),
    refresh: new RefreshTokens(opts.sql), resources,
    registrations: new RateLimiter(limits.registrationsPerMinute ?? DEFAULT_REGISTRATIONS_PER_MINUTE),
    ...(opts.human ? { human: { ...opts.human, replay: new ReplayCache(opts.sql) } } : {}),
  };
  const metadata = () => authorizationServerMetadata(opts.issuer(), opts.store);
  const cors = new Set(['/oauth2/token', '/oauth2/register', '/oauth2/revoke', '/oauth2/jwks', '/.well-known/jwks.json', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']);

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    if (req.method === 'OPTIONS' && cors.has(path)) {
      res.writeHead(204, OPEN_CORS).end();
      return;
    }
    switch (path) {
      case '/.well-known/oauth-authorization-server':
      case '/.well-known/openid-configuration':
        return sendJson(res, 200, metadata(), { ...OPEN_CORS, 'cache-control': 'public, max-age=300' });
      case '/oauth2/jwks':
      case '/.well-known/jwks.json':
        return sendJson(res, 200, opts.keys.jwks(), { ...OPEN_CORS, 'cache-control': 'public, max-age=300' });
      case '/oauth2/authorize':
        return authorizeEndpoint(deps, req, res, url);
      case '/oauth2/token':
        return tokenEndpoint(deps, req, res);
      case '/oauth2/register':
        return registrationEndpoint(deps, req, res);
      case '/oauth2/revoke':
        return revocationEndpoint(deps, req, res);
    }
    if (path.startsWith('/.well-known/oauth-protected-resource')) {
      // The metadata path names a Service, and the router percent-decodes that name: refuse what cannot decode.
      if (tryDecodeComponent(path) === undefined) throw invalidRequest('the path is not valid percent-encoding');
      if (opts.protectedResourceMetadata?.(req, res, url)) return;
    }
    sendJson(res, 404, { error: 'not_found' });
  }

  /**
   * Every endpoint answers for itself, and this answers for everything they did not expect: OAuth errors as
   * they are, other client errors as `invalid_request`, and anything else as a logged 500 `server_error`.
   * Nothing is left to reject into the listener.
   */
  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      await route(req, res, url);
    } catch (e) {
      if (res.headersSent) return void res.destroy();
      const oauth = asOAuthError(e);
      if (oauth) return oauth.send(res);
      console.error(`oauth: ${req.method} ${url.pathname} failed:`, e);
      new OAuthError('server_error', 'internal error', 500).send(res);
    }
  }

  return { handle, resources, close: () => cimd.close() };
}
