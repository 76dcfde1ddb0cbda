import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IdentityService } from '../auth/identity.js';
import type { DB } from '../store/db.js';
import type { ResourceStore } from '../store/resource-store.js';
import { authorizeEndpoint } from './authorize-endpoint.js';
import { CimdResolver } from './cimd.js';
import { ClientRegistry } from './clients.js';
import type { AsDeps } from './deps.js';
import { asOAuthError, invalidClientMetadata, invalidRequest, OAuthError } from './errors.js';
import { parseParams, RegistrationRequest } from './request-schemas.js';
import { tryDecodeComponent } from '../api/uri-component.js';
import { AuthorizationState, RefreshTokens } from './grants.js';
import { OPEN_CORS, readJsonObject, sendJson } from './http.js';
import type { KeyRing } from './keyring.js';
import { authorizationServerMetadata } from './metadata.js';
import { ResourceIndicators } from './resource-indicators.js';
import { revocationEndpoint, tokenEndpoint } from './token-endpoint.js';

export { ResourceIndicators, hostnameOfHost, isLoopbackHostname } from './resource-indicators.js';
export { DEFAULT_MCP_SCOPE } from './metadata.js';

export interface AuthorizationServerOptions {
  identity: IdentityService;
  keys: KeyRing;
  store: ResourceStore;
  db: DB;
  issuer: () => string;
  /**
   * Dev/test only: let Client ID Metadata Documents be fetched over plain http from loopback
   * (`http://127.0.0.1:…/client.json`). Never enable in production: it turns the SSRF guard's loopback block off.
   */
  cimdAllowLoopbackHttp?: boolean;
  /** RFC 9728 documents for the no-DNS Service form (`/.well-known/oauth-protected-resource/svc/<svc>/…`); false = not ours. */
  protectedResourceMetadata?: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean;
}

export interface AuthorizationServer {
  /** Everything under `/oauth2/` and `/.well-known/` on the cluster host. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  resources: ResourceIndicators;
  close(): Promise<void>;
}

/** RFC 7591 §3: `POST /oauth2/register`. Open registration, as MCP clients expect; abuse is capped in the registry. */
async function registrationEndpoint(deps: AsDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405);
  const body = await readJsonObject(req);
  if (!body) throw invalidClientMetadata('the registration request must be a JSON object');
  sendJson(res, 201, deps.clients.register(parseParams(RegistrationRequest, body, invalidClientMetadata)), OPEN_CORS);
}

/**
 * The cluster's built-in OAuth 2.1 authorization server (docs/mcp.md): RFC 8414 + OIDC discovery, JWKS,
 * authorization code + PKCE S256 with a consent page, client_credentials, refresh tokens with rotation,
 * DCR (RFC 7591), Client ID Metadata Documents, revocation (RFC 7009). Hand-written over jose.
 */
export function createAuthorizationServer(opts: AuthorizationServerOptions): AuthorizationServer {
  const cimd = new CimdResolver(opts.cimdAllowLoopbackHttp ?? false);
  const resources = new ResourceIndicators(opts.store, opts.issuer);
  const deps: AsDeps = {
    identity: opts.identity, keys: opts.keys, store: opts.store, issuer: opts.issuer,
    clients: new ClientRegistry(opts.db, cimd), state: new AuthorizationState(), refresh: new RefreshTokens(opts.db), resources,
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
