import type { IncomingMessage, ServerResponse } from 'node:http';
import { OcteliumError, type UserSpec } from '@octelium-ts/shared';
import { tryDecodeComponent } from '../api/uri-component.js';
import { asOAuthError, invalidClient, invalidGrant, invalidRequest, invalidScope, invalidTarget, OAuthError } from './errors.js';
import { pkceS256Matches } from './grants.js';
import type { RegisteredClient } from './clients.js';
import { validScope, type AsDeps } from './deps.js';
import { OPEN_CORS, readParams, sendJson } from './http.js';
import { JWT_BEARER, jwtBearerGrant } from './jwt-bearer-grant.js';
import { parseParams, RevocationRequest, TokenRequest } from './request-schemas.js';

const ID_TOKEN_TTL_S = 3600;

/**
 * Client authentication: HTTP Basic (RFC 6749 §2.3.1, id and secret form-urlencoded before base64) or
 * client_id/client_secret in the body. Malformed encoding in the header is a 400, never an exception.
 */
export function clientCredentials(req: IncomingMessage, form: { client_id?: string; client_secret?: string }): { id?: string; secret?: string; via: 'basic' | 'post' | 'none' } {
  const h = req.headers.authorization;
  if (h?.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i > 0) {
      const id = tryDecodeComponent(decoded.slice(0, i)), secret = tryDecodeComponent(decoded.slice(i + 1));
      if (id === undefined || secret === undefined) throw invalidRequest('the Basic credentials are not valid form-urlencoding');
      return { id, secret, via: 'basic' };
    }
  }
  const secret = form.client_secret;
  return { id: form.client_id, secret, via: secret ? 'post' : 'none' };
}

/** The single `resource` of a token request (RFC 8707), checked to be a Service of this cluster. */
function resourceParam(deps: AsDeps, form: { resource: string[] }): string | undefined {
  const all = form.resource;
  if (all.length > 1) throw invalidTarget('one resource per token request');
  if (all.length && !deps.resources.resolve(all[0])) throw invalidTarget(`"${all[0]}" is not a Service of this cluster`);
  return all[0];
}

/** OAUTH2 Credentials (workloads): the grant the cluster always had, now optionally audience-bound. */
async function clientCredentialsGrant(deps: AsDeps, req: IncomingMessage, form: TokenRequest): Promise<Record<string, unknown>> {
  const { id, secret } = clientCredentials(req, form);
  if (!id || !secret) throw invalidClient('client_id and client_secret are required');
  const scope = form.scope;
  if (scope !== undefined && (!scope || !validScope(scope))) throw invalidScope('malformed scope');
  const resource = resourceParam(deps, form);
  try {
    return await deps.identity.clientCredentialsToken(id, secret, scope, resource);
  } catch (e) {
    if (e instanceof OcteliumError && e.httpStatus === 401) throw invalidClient(e.message);
    throw e;
  }
}

async function authenticatedClient(deps: AsDeps, req: IncomingMessage, form: { client_id?: string; client_secret?: string }): Promise<RegisteredClient> {
  const { id, secret, via } = clientCredentials(req, form);
  if (!id) throw invalidClient('client_id is required');
  return deps.clients.authenticate(id, secret, via);
}

/** Ends a grant whose code or refresh token was replayed: deleting its Session revokes every token of it. */
function revokeGrant(deps: AsDeps, sessionName: string): void {
  deps.refresh.revokeSession(sessionName);
  if (deps.store.get('Session', sessionName)) deps.store.delete('Session', sessionName);
}

async function idToken(deps: AsDeps, user: { metadata: { uid?: string; name: string }; spec?: unknown }, clientId: string, nonce: string | undefined, authTime: number): Promise<string> {
  const email = (user.spec as UserSpec | undefined)?.email;
  return deps.keys.sign({
    sub: user.metadata.uid, aud: clientId, auth_time: authTime, preferred_username: user.metadata.name,
    ...(email ? { email } : {}), ...(nonce ? { nonce } : {}),
  }, ID_TOKEN_TTL_S, deps.issuer(), 'JWT');
}

/** authorization_code + PKCE (OAuth 2.1 §4.1.3): one Session per grant, audience = the `resource` indicator. */
async function authorizationCodeGrant(deps: AsDeps, req: IncomingMessage, form: TokenRequest): Promise<Record<string, unknown>> {
  const { code, redirect_uri: redirectUri, code_verifier: verifier } = form;
  if (!code || !verifier) throw invalidRequest('code and code_verifier are required');
  const client = await authenticatedClient(deps, req, form);
  const g = deps.state.code(code);
  if (!g) throw invalidGrant('unknown or expired authorization code');
  if (g.used) {
    if (g.sessionName) revokeGrant(deps, g.sessionName);
    throw invalidGrant('authorization code already used; the tokens issued for it are revoked');
  }
  if (g.clientId !== client.client_id) throw invalidGrant('the code was issued to another client');
  if ((redirectUri ?? g.redirectUri) !== g.redirectUri) throw invalidGrant('redirect_uri differs from the authorization request');
  if (!pkceS256Matches(verifier, g.codeChallenge)) throw invalidGrant('code_verifier does not match the code_challenge');
  const asked = resourceParam(deps, form);
  if (asked !== undefined && g.resource !== undefined && asked !== g.resource) throw invalidTarget('resource differs from the authorization request');
  const resource = asked ?? g.resource;
  if (!deps.state.redeemCode(code)) {
    // Redeemed concurrently (another request, maybe on another replica): the second redemption is a replay.
    const first = deps.state.code(code)?.sessionName;
    if (first) revokeGrant(deps, first);
    throw invalidGrant('authorization code already used; the tokens issued for it are revoked');
  }
  deps.clients.markUsed(client.client_id);
  let session;
  try {
    session = deps.identity.createGrantSession(g.userName, g.credentialName, g.grantExpiresAt, client.client_id, g.authentication);
  } catch {
    throw invalidGrant('the user or credential behind this code is gone');
  }
  deps.state.setCodeSession(code, session.metadata.name);
  const who = deps.identity.grantSessionUser(session.metadata.name)!;
  const access = await deps.identity.mintAccessToken({ session, user: who.user, clientID: client.client_id, scope: g.scope, audience: resource });
  const refresh = client.grant_types.includes('refresh_token')
    ? deps.refresh.issue({ clientId: client.client_id, sessionName: session.metadata.name, scope: g.scope, resource, expiresAt: g.grantExpiresAt })
    : undefined;
  const openid = g.scope?.split(' ').includes('openid');
  return {
    ...access, token_type: 'Bearer', ...(g.scope ? { scope: g.scope } : {}), ...(refresh ? { refresh_token: refresh } : {}),
    ...(openid ? { id_token: await idToken(deps, who.user, client.client_id, g.nonce, g.authTime) } : {}),
  };
}

/** refresh_token (OAuth 2.1 §4.3): rotation on every use; a replayed old token revokes the grant. */
async function refreshTokenGrant(deps: AsDeps, req: IncomingMessage, form: TokenRequest): Promise<Record<string, unknown>> {
  const token = form.refresh_token;
  if (!token) throw invalidRequest('refresh_token is required');
  const client = await authenticatedClient(deps, req, form);
  const g = deps.refresh.lookup(token);
  if (!g || g.clientId !== client.client_id) throw invalidGrant('unknown or expired refresh token');
  if (g.rotated) {
    revokeGrant(deps, g.sessionName);
    throw invalidGrant('refresh token already used; the grant is revoked');
  }
  const who = deps.identity.grantSessionUser(g.sessionName);
  if (!who) throw invalidGrant('the grant was revoked');
  const scope = form.scope;
  const granted = new Set(g.scope?.split(' ') ?? []);
  // Refreshing can narrow the scope, never widen it (RFC 6749 §6).
  if (scope !== undefined && (!validScope(scope) || scope.split(' ').some((s) => !granted.has(s)))) throw invalidScope('scope exceeds the original grant');
  const asked = resourceParam(deps, form);
  if (asked !== undefined && g.resource !== undefined && asked !== g.resource) throw invalidTarget('resource differs from the original grant');
  if (!deps.refresh.markRotated(token)) {
    // Redeemed concurrently (another request, maybe on another replica): one use wins, the other is a replay.
    revokeGrant(deps, g.sessionName);
    throw invalidGrant('refresh token already used; the grant is revoked');
  }
  const next = deps.refresh.issue({ clientId: client.client_id, sessionName: g.sessionName, scope: g.scope, resource: g.resource, expiresAt: g.expiresAt });
  const access = await deps.identity.mintAccessToken({ session: who.session, user: who.user, clientID: client.client_id, scope: scope ?? g.scope, audience: asked ?? g.resource });
  return { ...access, token_type: 'Bearer', ...((scope ?? g.scope) ? { scope: scope ?? g.scope } : {}), refresh_token: next };
}

/** `POST /oauth2/token`. */
export async function tokenEndpoint(deps: AsDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    if (req.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405);
    const form = parseParams(TokenRequest, await readParams(req));
    const grant = form.grant_type;
    let body: Record<string, unknown>;
    if (grant === 'client_credentials') body = await clientCredentialsGrant(deps, req, form);
    else if (grant === 'authorization_code') body = await authorizationCodeGrant(deps, req, form);
    else if (grant === 'refresh_token') body = await refreshTokenGrant(deps, req, form);
    else if (grant === JWT_BEARER) body = await jwtBearerGrant(deps, req, form);
    else throw new OAuthError('unsupported_grant_type', `supported grant types: client_credentials, authorization_code, refresh_token, ${JWT_BEARER}`);
    sendJson(res, 200, body, OPEN_CORS);
  } catch (e) {
    const oauth = asOAuthError(e);
    if (oauth) return oauth.send(res);
    throw e;
  }
}

/** `POST /oauth2/revoke` (RFC 7009): revoking a refresh token — or an access token — ends the whole grant. */
export async function revocationEndpoint(deps: AsDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    if (req.method !== 'POST') throw new OAuthError('invalid_request', 'use POST', 405);
    const form = parseParams(RevocationRequest, await readParams(req));
    const token = form.token;
    if (!token) throw invalidRequest('token is required');
    const client = await authenticatedClient(deps, req, form);
    let session = deps.refresh.revoke(token, client.client_id);
    if (!session && token.split('.').length === 3) {
      const payload = await deps.keys.verify(token, deps.issuer());
      if (payload?.client_id === client.client_id && typeof payload.sid === 'string') session = payload.sid;
    }
    if (session) revokeGrant(deps, session);
    // RFC 7009 §2.2: unknown tokens are not an error.
    sendJson(res, 200, {}, OPEN_CORS);
  } catch (e) {
    const oauth = asOAuthError(e);
    if (oauth) return oauth.send(res);
    throw e;
  }
}

